// Package tributary holds the vocabulary shared by the Tributary Kafka SDK
// (packages client, partitioner, producer, consumer, admin) and the
// companion broker (package broker): records, headers, topic-partitions and
// Kafka's error codes as Go errors.
//
// Every Kafka error code is an *Error variable (ErrUnknownTopicOrPartition,
// ErrOutOfOrderSequenceNumber, ...). SDK calls wrap them with context, so
// test with errors.Is; the broker answers with their Code.
package tributary
