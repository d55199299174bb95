#[bindery::sink]
async fn audit(order: String) -> u32 {
    order.len() as u32
}

fn main() {}
