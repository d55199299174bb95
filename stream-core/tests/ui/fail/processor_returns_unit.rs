#[bindery::processor]
async fn bill(order: String) -> () {
    let _ = order;
}

fn main() {}
