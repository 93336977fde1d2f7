"""PostgreSQL and Kafka: the event store, outbox, relay, topics and local views."""
