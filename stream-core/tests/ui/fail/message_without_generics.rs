use bindery::prelude::*;

#[bindery::sink]
async fn audit(order: Message) {
    let _ = order;
}

fn main() {}
