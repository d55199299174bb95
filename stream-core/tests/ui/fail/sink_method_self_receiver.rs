struct Auditor;

impl Auditor {
    #[bindery::sink]
    async fn audit(&self, order: String) {
        let _ = order;
    }
}

fn main() {}
