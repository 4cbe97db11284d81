import KafkaLog
import KafkaWire

// DescribeConfigs, AlterConfigs, IncrementalAlterConfigs. Topic configs are dynamic (stored with the
// topic); broker configs are static (server.properties and --override) and read-only.

/// Resource types of the config APIs.
enum ConfigResourceType: Int8 {
    case topic = 2
    case broker = 4
}

/// How often each (type, name) resource appears in a request: counted once, so that checking every
/// resource for duplicates is linear in the request.
struct ResourceCounts {
    private struct Key: Hashable {
        var type: Int8
        var name: String
    }
    private let counts: [Key: Int]

    init(_ resources: [(Int8, String)]) {
        counts = Dictionary(resources.map { (Key(type: $0.0, name: $0.1), 1) }, uniquingKeysWith: +)
    }

    func count(_ type: Int8, _ name: String) -> Int { counts[Key(type: type, name: name)] ?? 0 }
}

struct DescribedConfig {
    var name: String
    var value: String?
    var configSource: Int8
    var configType: Int8
    var readOnly: Bool
    var synonyms: [(String, String?, ConfigSource)]
}

extension RequestDispatcher {
    /// Every supported topic config with its effective value and where it comes from, by name.
    func topicConfigs(overrides: [String: String]) -> [DescribedConfig] {
        TopicConfig.keys.map { key in
            let effective = TopicConfig.effective(key, overrides: overrides, broker: broker.config)
            return DescribedConfig(name: key.definition.name, value: effective.value, configSource: effective.source.rawValue,
                                   configType: key.definition.type.rawValue, readOnly: false, synonyms: effective.synonyms)
        }.sorted { $0.name < $1.name }
    }

    /// Keys whose value another key can give, in Kafka's order of precedence (DescribeConfigs lists
    /// them as synonyms: those that have a value, set or default).
    static let brokerSynonyms: [String: [String]] = [
        "log.retention.ms": ["log.retention.ms", "log.retention.minutes", "log.retention.hours"],
        "log.retention.minutes": ["log.retention.minutes", "log.retention.hours"],
        "log.dirs": ["log.dirs", "log.dir"],
        "log.dir": ["log.dir"],
        "broker.id": ["broker.id"],
        "node.id": ["node.id", "broker.id"],
    ]

    func brokerConfigs() -> [DescribedConfig] {
        BrokerConfig.definitions.map { definition in
            var (value, source) = broker.config.value(definition.name)
            let synonyms = (Self.brokerSynonyms[definition.name] ?? [definition.name]).compactMap { name -> (String, String?, ConfigSource)? in
                let (value, source) = broker.config.value(name)
                return value.map { (name, $0, source) }
            }
            // Unset, a key takes its value's source from the synonym that gives it (Kafka's rule).
            if value == nil, let first = synonyms.first { source = first.2 }
            if definition.name == "log.retention.ms" && value == nil { value = String(broker.config.retentionMs) }
            // Passwords and keys (ssl.key.password, ssl.keystore.key) are never sent: null and sensitive, as Kafka answers.
            let sensitive = definition.type == .password
            return DescribedConfig(name: definition.name, value: sensitive ? nil : value, configSource: source.rawValue,
                                   configType: definition.type.rawValue, readOnly: true,
                                   synonyms: sensitive ? synonyms.map { ($0.0, nil, $0.2) } : synonyms)
        }.sorted { $0.name < $1.name }
    }

    func describeConfigs(_ request: DescribeConfigsRequest, version: Int16, context: RequestContext = RequestContext()) -> DescribeConfigsResponse {
        typealias Result = DescribeConfigsResponse.DescribeConfigsResult
        // A resource asked for twice is answered once: every answer carries every config, so repeats
        // would multiply a small request into a response of gigabytes.
        var seen = Set<String>()
        let resources = request.resources.filter { seen.insert("\($0.resourceType)/\($0.resourceName)/\($0.configurationKeys ?? [])").inserted }
        let results = resources.map { resource -> Result in
            func failure(_ code: ErrorCode, _ message: String) -> Result {
                Result(errorCode: code.rawValue, errorMessage: message, resourceType: resource.resourceType, resourceName: resource.resourceName, configs: [])
            }
            if let refused = configRefusal(resource.resourceType, resource.resourceName, .describeConfigs, context) {
                return failure(refused, "\(refused)")
            }
            let described: [DescribedConfig]
            switch ConfigResourceType(rawValue: resource.resourceType) {
            case .topic:
                if let problem = TopicRegistry.nameProblem(resource.resourceName) { return failure(.invalidTopicException, problem) }
                guard let topic = broker.topics.topic(resource.resourceName) else {
                    return failure(.unknownTopicOrPartition, "The topic '\(resource.resourceName)' does not exist.")
                }
                described = topicConfigs(overrides: topic.overrides)
            case .broker:
                guard resource.resourceName.isEmpty || resource.resourceName == String(broker.brokerId) else {
                    return failure(.invalidRequest, "Unexpected broker id, expected \(broker.brokerId) or empty string, but received \(resource.resourceName)")
                }
                // The empty name asks for cluster-wide dynamic defaults, of which there are none.
                described = resource.resourceName.isEmpty ? [] : brokerConfigs()
            case nil:
                return failure(.invalidRequest, "Unsupported resource type \(resource.resourceType)")
            }
            let keys = resource.configurationKeys.map(Set.init)
            return Result(errorCode: 0, errorMessage: nil, resourceType: resource.resourceType, resourceName: resource.resourceName,
                          configs: described.filter { keys?.contains($0.name) ?? true }.map { config in
                              .init(name: config.name, value: config.value, readOnly: config.readOnly, configSource: config.configSource,
                                    isDefault: config.configSource == ConfigSource.defaultConfig.rawValue,
                                    isSensitive: config.configType == ConfigType.password.rawValue,
                                    synonyms: request.includeSynonyms ? config.synonyms.map { .init(name: $0.0, value: $0.1, source: $0.2.rawValue) } : [],
                                    configType: config.configType,
                                    documentation: request.includeDocumentation ? ConfigDocumentation.text[config.name] : nil)
                          })
        }
        return DescribeConfigsResponse(throttleTimeMs: 0, results: results)
    }

    /// Checks shared by both alter APIs; nil when the resource may be altered. `resources` are all
    /// of the request's (type, name) pairs, `keys` this resource's config names.
    private func alterProblem(type: Int8, name: String, keys: [String], resources: ResourceCounts) -> (ErrorCode, String)? {
        if resources.count(type, name) > 1 { return (.invalidRequest, "Each resource must appear at most once.") }
        let duplicates = Set(keys).count != keys.count
        switch ConfigResourceType(rawValue: type) {
        case .topic:
            if name.isEmpty { return (.invalidRequest, "Default topic resources are not allowed.") }
            if duplicates { return (.invalidRequest, "Error due to duplicate config keys") }
            guard broker.topics.topic(name) != nil else { return (.unknownTopicOrPartition, "The topic '\(name)' does not exist.") }
            if TopicRegistry.isInternal(name) { return (.invalidRequest, "The configs of internal topic \(name) are the broker's.") }
            return nil
        case .broker:
            return (.invalidRequest, "Broker configs of MiniBroker are static: set them in server.properties or with --override")
        case nil:
            return (.invalidRequest, "Unsupported resource type \(type)")
        }
    }

    func alterConfigs(_ request: AlterConfigsRequest, context: RequestContext = RequestContext()) -> AlterConfigsResponse {
        let all = ResourceCounts(request.resources.map { ($0.resourceType, $0.resourceName) })
        let responses = request.resources.map { resource -> AlterConfigsResponse.AlterConfigsResourceResponse in
            func answer(_ code: ErrorCode, _ message: String?) -> AlterConfigsResponse.AlterConfigsResourceResponse {
                .init(errorCode: code.rawValue, errorMessage: message, resourceType: resource.resourceType, resourceName: resource.resourceName)
            }
            if let refused = configRefusal(resource.resourceType, resource.resourceName, .alterConfigs, context) {
                return answer(refused, "\(refused)")
            }
            if let (code, message) = alterProblem(type: resource.resourceType, name: resource.resourceName,
                                                  keys: resource.configs.map(\.name), resources: all) {
                return answer(code, message)
            }
            // AlterConfigs replaces the whole set of overrides.
            var overrides: [String: String] = [:]
            for config in resource.configs {
                guard let value = config.value else { return answer(.invalidRequest, "Null value not supported for : \(config.name)") }
                overrides[config.name] = value
            }
            do throws(TopicError) {
                try broker.topics.setOverrides(name: resource.resourceName, overrides, validateOnly: request.validateOnly)
                return answer(.noError, nil)
            } catch {
                return answer(error.code, error.message)
            }
        }
        return AlterConfigsResponse(throttleTimeMs: 0, responses: responses)
    }

    func incrementalAlterConfigs(_ request: IncrementalAlterConfigsRequest, context: RequestContext = RequestContext()) -> IncrementalAlterConfigsResponse {
        let all = ResourceCounts(request.resources.map { ($0.resourceType, $0.resourceName) })
        let responses = request.resources.map { resource -> IncrementalAlterConfigsResponse.AlterConfigsResourceResponse in
            func answer(_ code: ErrorCode, _ message: String?) -> IncrementalAlterConfigsResponse.AlterConfigsResourceResponse {
                .init(errorCode: code.rawValue, errorMessage: message, resourceType: resource.resourceType, resourceName: resource.resourceName)
            }
            if let refused = configRefusal(resource.resourceType, resource.resourceName, .alterConfigs, context) {
                return answer(refused, "\(refused)")
            }
            if let (code, message) = alterProblem(type: resource.resourceType, name: resource.resourceName,
                                                  keys: resource.configs.map(\.name), resources: all) {
                return answer(code, message)
            }
            var overrides = broker.topics.topic(resource.resourceName)?.overrides ?? [:]
            for config in resource.configs {
                guard let key = TopicConfig.byName[config.name] else {
                    return answer(.invalidConfig, "Unknown topic config name: \(config.name)")
                }
                switch config.configOperation {
                case 0:  // SET
                    guard let value = config.value else { return answer(.invalidRequest, "Null value not supported for : \(config.name)") }
                    overrides[config.name] = value
                case 1:  // DELETE
                    overrides[config.name] = nil
                case 2, 3:  // APPEND, SUBTRACT: list-typed keys only
                    guard key.definition.type == .list else {
                        return answer(.invalidConfig, "Can't \(config.configOperation == 2 ? "APPEND" : "SUBTRACT") to key \(config.name) because its type is not LIST.")
                    }
                    let current = TopicConfig.effective(key, overrides: overrides, broker: broker.config).value ?? ""
                    var items = current.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
                    let changes = (config.value ?? "").split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
                    if config.configOperation == 2 {
                        for item in changes where !items.contains(item) { items.append(item) }
                    } else {
                        items.removeAll { changes.contains($0) }
                    }
                    overrides[config.name] = items.joined(separator: ",")
                default:
                    return answer(.invalidRequest, "Unknown config operation \(config.configOperation)")
                }
            }
            do throws(TopicError) {
                try broker.topics.setOverrides(name: resource.resourceName, overrides, validateOnly: request.validateOnly)
                return answer(.noError, nil)
            } catch {
                return answer(error.code, error.message)
            }
        }
        return IncrementalAlterConfigsResponse(throttleTimeMs: 0, responses: responses)
    }

    /// DESCRIBE_CONFIGS or ALTER_CONFIGS on the topic, or on the cluster for a broker's configs.
    private func configRefusal(_ type: Int8, _ name: String, _ operation: AclOperation, _ context: RequestContext) -> ErrorCode? {
        switch ConfigResourceType(rawValue: type) {
        case .topic: return permits(context, operation, .topic, name) ? nil : .topicAuthorizationFailed
        case .broker: return permitsCluster(context, operation) ? nil : .clusterAuthorizationFailed
        case nil: return nil
        }
    }
}
