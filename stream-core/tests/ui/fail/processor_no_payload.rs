use bindery::prelude::*;

#[bindery::processor]
async fn bill(ctx: Context) -> String {
    ctx.handler_name().to_string()
}

fn main() {}
