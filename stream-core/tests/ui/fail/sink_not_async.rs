#[bindery::sink(input = "orders")]
fn audit(order: String) {
    let _ = order;
}

fn main() {}
