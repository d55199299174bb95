#[bindery::sink(input = "orders", group = 5)]
async fn audit(order: String) {
    let _ = order;
}

fn main() {}
