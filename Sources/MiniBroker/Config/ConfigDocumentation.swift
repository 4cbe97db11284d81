/// One line of documentation per config key, as DescribeConfigs reports it (includeDocumentation).
/// Kafka's meaning of each key, in our words; where MiniBroker differs from Kafka the text says so.
/// Every broker key is static in MiniBroker: it is set in server.properties or with --override, never altered at runtime.
/// A key that is both a broker and a topic key (compression.type, min.insync.replicas) has one entry, written for both.
enum ConfigDocumentation {
    static let text: [String: String] = [
        // MARK: Broker keys (BrokerConfig.definitions)

        "broker.id":
            "This broker's numeric id (0 or more), reported to clients in metadata. Static, like every MiniBroker broker key: "
            + "set it in server.properties or with --override.",
        "node.id":
            "The node's id under KRaft, successor to broker.id (0 or more). Unset by default; when set, MiniBroker uses it over broker.id.",
        "listeners":
            "Comma-separated NAME://host:port addresses to listen on, each name once; an empty host means all interfaces. "
            + "Each listener's security protocol comes from listener.security.protocol.map.",
        "advertised.listeners":
            "The NAME://host:port clients are told to use, in metadata; a client is given the address of the listener it connected to. "
            + "Unset means the listeners themselves.",
        "listener.security.protocol.map":
            "NAME:PROTOCOL pairs giving each listener its security protocol: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL. "
            + "A listener named after a protocol needs no entry.",
        "sasl.enabled.mechanisms":
            "The SASL mechanisms SASL listeners accept: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 (the default is all three; MiniBroker has no GSSAPI or OAUTHBEARER).",
        "authorizer.class.name":
            "Turns ACLs on: org.apache.kafka.metadata.authorizer.StandardAuthorizer (or kafka.security.authorizer.AclAuthorizer; both mean "
            + "MiniBroker's one authorizer, with Kafka's rules). Empty, the default, leaves every request allowed and the ACL APIs disabled.",
        "super.users":
            "Principals allowed everything whatever the ACLs say, separated by ';': User:admin;User:ops.",
        "allow.everyone.if.no.acl.found":
            "With an authorizer, whether a resource that no ACL names is open to every principal (default false: closed).",
        "connections.max.reauth.ms":
            "How long an authenticated SASL session lasts before the client must re-authenticate on the same connection (KIP-368); "
            + "a request after expiry closes the connection. 0, the default, lets a session last as long as its connection.",
        "connection.failed.authentication.delay.ms":
            "How long a failed SASL authentication waits before its error is sent and the connection closed (default 100), slowing password guessing.",
        "ssl.keystore.type":
            "The keystore's format: PEM, the only one MiniBroker reads (Kafka's default JKS and PKCS12 are refused: convert them with keytool or openssl).",
        "ssl.keystore.location":
            "A PEM file with the TLS listeners' private key (PKCS#8, encrypted with ssl.key.password or not) and certificate chain. "
            + "Every ssl.* key can be given for one listener as listener.name.<listener>.ssl.*.",
        "ssl.keystore.certificate.chain":
            "The certificate chain in PEM, inline, for a keystore given without a file (with ssl.keystore.key).",
        "ssl.keystore.key":
            "The private key in PEM, inline, for a keystore given without a file (with ssl.keystore.certificate.chain).",
        "ssl.key.password":
            "The passphrase of an encrypted private key in the keystore.",
        "ssl.truststore.type":
            "The truststore's format: PEM, the only one MiniBroker reads.",
        "ssl.truststore.location":
            "A PEM file with the CA certificates client certificates must chain to (ssl.client.auth); unset, the system's CAs.",
        "ssl.truststore.certificates":
            "The truststore's CA certificates in PEM, inline, instead of ssl.truststore.location.",
        "ssl.client.auth":
            "Whether TLS clients present a certificate: none (the default), requested (checked if given) or required. "
            + "On an SSL listener the certificate's subject is the principal (ssl.principal.mapping.rules); without one it is User:ANONYMOUS.",
        "ssl.enabled.protocols":
            "The TLS versions served: TLSv1.2 and TLSv1.3 (the default is both; older versions are never served).",
        "ssl.principal.mapping.rules":
            "How a client certificate's subject (RFC 2253, e.g. CN=alice,OU=Eng,O=Example) becomes a principal name: rules tried in order, "
            + "RULE:pattern/replacement/ with an optional L or U for lower or upper case, or DEFAULT for the whole subject. "
            + "A subject no rule matches is refused.",
        "log.dirs":
            "Comma-separated directories for partition data. MiniBroker keeps all data in the first one listed; --data-dir sets this key.",
        "log.dir": "A single data directory, used only when log.dirs is not set.",
        "num.partitions":
            "Partition count for topics created without one: auto-created topics and CreateTopics asking for -1. At least 1.",
        "default.replication.factor":
            "Replica count for topics created without one. Accepted, but MiniBroker is a single node: every partition has one replica.",
        "auto.create.topics.enable":
            "When true, a metadata request naming an unknown topic creates it with num.partitions partitions; false turns this off.",
        "log.segment.bytes":
            "Broker default for segment.bytes: the size in bytes at which a partition's active segment is closed and a new one begun.",
        "log.index.interval.bytes":
            "Broker default for index.interval.bytes: how many bytes of records lie between two entries of a segment's offset index.",
        "log.retention.hours":
            "Hours log data is kept before deletion (default 168, a week). log.retention.minutes and log.retention.ms win over it.",
        "log.retention.minutes":
            "Retention time in minutes; when set it wins over log.retention.hours, and log.retention.ms in turn wins over it.",
        "log.retention.ms":
            "Broker default for retention.ms, in milliseconds; wins over log.retention.minutes and .hours. -1 keeps data forever.",
        "log.retention.bytes":
            "Broker default for retention.bytes: bytes a partition's log may hold before old segments are deleted; -1 means no limit.",
        "log.retention.check.interval.ms":
            "How often, in milliseconds, the broker looks for log segments that retention lets it delete.",
        "log.flush.interval.messages":
            "Broker default for flush.messages: fsync a partition's log after this many messages; the default (largest long) never does.",
        "log.flush.interval.ms":
            "Broker default for flush.ms: the longest, in milliseconds, written data may stay unsynced; unset means no time-based fsync.",
        "log.cleanup.policy":
            "Broker default for cleanup.policy: delete (drop old segments by retention), compact (keep the last record per key), or both.",
        "log.cleaner.enable":
            "Whether the log cleaner runs, compacting topics whose cleanup.policy includes compact; false leaves such topics uncompacted.",
        "log.cleaner.threads":
            "Number of background threads that compact logs. In MiniBroker 0 keeps the cleaner from running.",
        "log.cleaner.io.max.bytes.per.second":
            "Cap, in bytes per second, on the cleaner's disk reads plus writes, shared by all cleaner threads; the default is unlimited.",
        "log.cleaner.dedupe.buffer.size":
            "Memory in bytes for the key-to-offset map the cleaner builds when compacting, split among its threads (default 128 MiB).",
        "log.cleaner.backoff.ms":
            "How long, in milliseconds, a cleaner thread sleeps when no log needs cleaning.",
        "log.cleaner.min.cleanable.ratio":
            "Broker default for min.cleanable.dirty.ratio: the share (0 to 1) of a log that must be uncompacted before it is cleaned.",
        "log.cleaner.min.compaction.lag.ms":
            "Broker default for min.compaction.lag.ms: records younger than this many milliseconds are never compacted away.",
        "log.cleaner.max.compaction.lag.ms":
            "Broker default for max.compaction.lag.ms: the longest, in milliseconds, a record may wait before its log is compacted.",
        "log.cleaner.delete.retention.ms":
            "Broker default for delete.retention.ms: how long, in milliseconds, tombstones stay readable in a log after cleaning.",
        "log.roll.ms":
            "Broker default for segment.ms: the age in ms at which the active segment rolls, full or not. There is no log.roll.hours.",
        "log.message.timestamp.type":
            "Broker default for message.timestamp.type: CreateTime keeps the producer's timestamps, LogAppendTime uses the broker's clock.",
        "log.message.timestamp.before.max.ms":
            "Broker default for message.timestamp.before.max.ms: how many ms a CreateTime timestamp may lag behind the broker's clock.",
        "log.message.timestamp.after.max.ms":
            "Broker default for message.timestamp.after.max.ms: how many ms a CreateTime timestamp may run ahead of the broker's clock.",
        "message.max.bytes":
            "Broker default for max.message.bytes: the largest record batch, in bytes after compression, a produce request may append.",
        "fetch.max.bytes":
            "The most record bytes one Fetch response carries across all partitions; its first batch is sent whole even when larger.",
        "max.request.partition.size.limit":
            "The most partitions one DescribeTopicPartitions response describes; clients ask for the rest with the returned cursor.",
        "socket.request.max.bytes":
            "The largest request, in bytes, the broker reads from a connection; a bigger frame is refused and the connection closed.",
        "max.connections":
            "The most client connections the broker keeps open at once. In MiniBroker a connection over the limit is closed straight away.",
        "connections.max.idle.ms":
            "Milliseconds after which a connection with no traffic is closed. In MiniBroker -1 or 0 keeps idle connections open.",
        "min.insync.replicas":
            "With acks=all, how many in-sync replicas must hold a write for it to succeed. Not enforced: MiniBroker has one replica.",
        "compression.type":
            "Codec for stored data: producer (keep the producer's codec) or one of uncompressed, gzip, snappy, lz4, zstd. "
            + "Accepted, but MiniBroker always stores batches as the producer compressed them.",
        "transaction.max.timeout.ms":
            "The longest transaction.timeout.ms, in milliseconds, a transactional producer may ask for at InitProducerId; "
            + "a longer one is refused with INVALID_TRANSACTION_TIMEOUT.",
        "transaction.abort.timed.out.transaction.cleanup.interval.ms":
            "How often, in milliseconds, the transaction coordinator looks for transactions open longer than their timeout; "
            + "it aborts them and fences their producer.",
        "transactional.id.expiration.ms":
            "How long, in milliseconds, a transactional id with no transaction open is kept after its last use before it is forgotten.",
        "transaction.remove.expired.transaction.cleanup.interval.ms":
            "How often, in milliseconds, the transaction coordinator removes transactional ids past transactional.id.expiration.ms.",
        "group.initial.rebalance.delay.ms":
            "How long, in milliseconds, the first rebalance of a new classic group waits for more members to join; 0 starts it at once.",
        "group.min.session.timeout.ms":
            "The shortest session timeout, in milliseconds, a classic group member may ask for when joining; shorter requests are refused.",
        "group.max.session.timeout.ms":
            "The longest session timeout, in milliseconds, a classic group member may ask for when joining; longer requests are refused.",
        "group.consumer.heartbeat.interval.ms":
            "The heartbeat interval, in milliseconds, the broker gives members of consumer-protocol (KIP-848) groups.",
        "group.consumer.session.timeout.ms":
            "Milliseconds without a heartbeat after which a member of a consumer-protocol (KIP-848) group is removed from it.",
        "offsets.retention.minutes":
            "How long, in minutes, a group's committed offsets are kept once the group has no members (default 10080, one week).",
        "metrics.port":
            "The port of the Prometheus endpoint (GET /metrics); -1, the default, turns metrics off and 0 picks a free port. "
            + "A MiniBroker key: Kafka exposes JMX instead.",
        "metrics.host": "The address the Prometheus endpoint listens on (default 127.0.0.1). A MiniBroker key.",
        "quota.window.num":
            "How many samples client quota rates are measured over (2 to 3600, default 11); the rate spans them all.",
        "quota.window.size.seconds":
            "The length, in seconds, of each client quota sample (1 to 3600, default 1); with quota.window.num it sets the window.",

        // MARK: Topic keys (TopicConfig.keys; compression.type and min.insync.replicas are above)

        "cleanup.policy":
            "How old data leaves the log: delete drops segments past retention.ms or .bytes, compact keeps the last record per key; "
            + "both may be listed.",
        "min.cleanable.dirty.ratio":
            "The share (0 to 1) of the log that must be uncompacted before the cleaner takes it; a lower ratio cleans more often.",
        "min.compaction.lag.ms":
            "The age, in milliseconds, a record must reach before compaction may remove it; 0 means no minimum.",
        "max.compaction.lag.ms":
            "The longest, in milliseconds, a record may stay uncompacted: past it the log is cleaned whatever its dirty ratio.",
        "delete.retention.ms":
            "For compacted topics: how long, in ms, a tombstone (null-value record) stays readable after cleaning, so consumers see it.",
        "segment.ms":
            "The age, in milliseconds, at which the active segment rolls even if not full, so retention and compaction can reach its data.",
        "retention.ms":
            "How long, in milliseconds, records are kept before their segment may be deleted (delete policy); -1 keeps them forever.",
        "retention.bytes":
            "The size, in bytes, a partition's log may grow to before its oldest segments are deleted (delete policy); -1 means no limit.",
        "segment.bytes":
            "The size, in bytes, at which a partition's active segment file is closed and a new one started; at least 14.",
        "index.interval.bytes":
            "How many bytes of records go between two offset index entries; smaller values give finer lookups and a larger index.",
        "max.message.bytes":
            "The largest record batch, in bytes after compression, the topic accepts; a bigger one is refused as too large.",
        "message.timestamp.type":
            "CreateTime stores the timestamp the producer set; LogAppendTime replaces it with the broker's time at append.",
        "message.timestamp.before.max.ms":
            "With CreateTime, how many milliseconds a batch's timestamp may lie behind the broker's clock; the default allows any age.",
        "message.timestamp.after.max.ms":
            "With CreateTime, how many milliseconds a batch's timestamp may lie ahead of the broker's clock (default one hour).",
        "flush.messages":
            "Force an fsync of the partition's log after this many messages; the default (largest long) leaves flushing to the OS.",
        "flush.ms":
            "Force an fsync once data has been unsynced this many milliseconds; the default (largest long) leaves flushing to the OS.",
    ]
}
