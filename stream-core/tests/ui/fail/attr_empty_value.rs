#[bindery::sink(input = "  ")]
async fn audit(order: String) {
    let _ = order;
}

fn main() {}
