// A format in Rust's style: the compile error names the C printf form.
fn main() {
    let (id, us) = (42u64, 17u64);
    ringtrace::trace!("request {} took {} us", id, us);
    // An inline capture would compile without the check (no argument, no
    // conversion) and print "{id}" literally.
    ringtrace::trace!("request {id}");
}
