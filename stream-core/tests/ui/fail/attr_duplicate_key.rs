#[bindery::processor(input = "orders", output = "invoices", input = "orders-v2")]
async fn bill(order: String) -> String {
    order
}

fn main() {}
