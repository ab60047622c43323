// `#[ringtrace::traced]` refuses an `async fn`, saying why.
#[ringtrace::traced]
async fn fetch() -> u32 {
    1
}

fn main() {
    let _ = fetch();
}
