use bindery::prelude::*;

#[bindery::processor]
async fn bill(order: String) -> Result<(), HandlerError> {
    let _ = order;
    Ok(())
}

fn main() {}
