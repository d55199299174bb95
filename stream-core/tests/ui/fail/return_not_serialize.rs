use bindery::prelude::*;

#[derive(Deserialize)]
struct Order {
    id: u64,
}

struct Invoice {
    order: u64,
}

#[bindery::processor]
async fn bill(order: Order) -> Invoice {
    Invoice { order: order.id }
}

fn main() {}
