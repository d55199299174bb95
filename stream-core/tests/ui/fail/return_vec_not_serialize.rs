use bindery::prelude::*;

struct Invoice {
    order: u64,
}

#[bindery::processor]
async fn bill(order: String) -> Result<Vec<Message<Invoice>>, HandlerError> {
    Ok(vec![Message::new(Invoice { order: order.len() as u64 })])
}

fn main() {}
