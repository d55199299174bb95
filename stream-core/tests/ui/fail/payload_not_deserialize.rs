struct Order {
    id: u64,
}

#[bindery::sink]
async fn audit(order: Order) {
    let _ = order.id;
}

fn main() {}
