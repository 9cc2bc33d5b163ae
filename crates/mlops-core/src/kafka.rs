//! What the Kafka source (step 1) and the prediction log's topic (step 20) share: a client to a
//! set of brokers and the partition clients of a topic, each step bounded by a timeout and its
//! failure told in words (the `kafka` feature; rskafka, no polars).

use std::time::Duration;

use rskafka::client::partition::{PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};

/// Runs `f` within `timeout`; a failure or a timeout is told as `what: ...`.
pub async fn within<T, E: std::fmt::Display>(
    timeout: Duration,
    what: &str,
    f: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(timeout, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => Err(format!("{what}: no answer within {} s", timeout.as_secs_f64())),
    }
}

/// A client of `brokers` (`host:port`), as `client_id`, giving up after `timeout`.
pub async fn connect(brokers: &[String], client_id: &str, timeout: Duration) -> Result<Client, String> {
    let backoff = rskafka::BackoffConfig { deadline: Some(timeout), ..Default::default() };
    let building = ClientBuilder::new(brokers.to_vec()).backoff_config(backoff).client_id(client_id).build();
    within(timeout, "cannot connect", building).await
}

/// The partition clients of `topic`, in partition order; a topic that is not there is an error
/// naming the topics that are.
pub async fn partitions(client: &Client, topic: &str, timeout: Duration) -> Result<Vec<PartitionClient>, String> {
    let topics = within(timeout, "listing topics", client.list_topics()).await?;
    let Some(found) = topics.iter().find(|t| t.name == topic) else {
        let mut names: Vec<&str> = topics.iter().map(|t| t.name.as_str()).collect();
        names.sort_unstable();
        return Err(format!(
            "the topic does not exist (topics: {})",
            if names.is_empty() { "none".into() } else { names.join(", ") }
        ));
    };
    let mut out = Vec::with_capacity(found.partitions.len());
    for p in &found.partitions {
        let what = format!("partition {p}");
        out.push(within(timeout, &what, client.partition_client(topic, *p, UnknownTopicHandling::Error)).await?);
    }
    if out.is_empty() {
        return Err("the topic has no partitions".into());
    }
    Ok(out)
}
