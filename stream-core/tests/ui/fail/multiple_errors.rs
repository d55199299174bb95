#[bindery::processor(inputt = "orders", group = 5)]
fn bill<T>(_left: &str, _right: String) {}

fn main() {}
