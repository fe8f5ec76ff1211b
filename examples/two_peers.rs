//! Two presence peers on this machine, over real TCP: the second joins the
//! first, both see each other online with their data, then one leaves.
//!
//! Run with `cargo run --example two_peers`.

use std::time::Duration;

use futures::StreamExt;
use hyper_presence::net::Node;
use hyper_presence::proto::Event;
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let alice = Node::builder()
        .topic("two-peers example")
        .listen("127.0.0.1:0".parse()?)
        .data(json!({"name": "alice"}))
        .spawn()
        .await?;
    let bob = Node::builder()
        .topic("two-peers example")
        .connect(alice.listen_addrs()[0])
        .data(json!({"name": "bob"}))
        .spawn()
        .await?;

    let mut events = alice.events();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(10), events.next()).await?;
        let event = event.ok_or("alice stopped")?;
        println!("alice hears: {event:?}");
        if let Event::PeerData { id, data } = &event {
            if *id == bob.id() {
                println!("bob is online and says {data}");
                break;
            }
        }
    }
    println!("online for alice: {:?}", alice.online());

    bob.shutdown().await;
    while alice.online().len() > 1 {
        let event = tokio::time::timeout(Duration::from_secs(10), events.next()).await?;
        println!("alice hears: {:?}", event.ok_or("alice stopped")?);
    }
    println!("bob left; online for alice: {:?}", alice.online());
    alice.shutdown().await;
    Ok(())
}
