#[bindery::sink]
async fn audit(order: &str) {
    let _ = order;
}

fn main() {}
