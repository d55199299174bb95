use bindery::prelude::*;

struct Order {
    id: u64,
}

#[bindery::sink]
async fn audit(order: Message<Order>) {
    let _ = order.payload().id;
}

fn main() {}
