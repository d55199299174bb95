#[bindery::sink(input = "orders", output = "audits", interval = "1s")]
async fn audit(order: String) {
    let _ = order;
}

fn main() {}
