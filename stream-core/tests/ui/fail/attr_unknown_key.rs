#[bindery::sink(inputt = "orders")]
async fn audit(order: String) {
    let _ = order;
}

fn main() {}
