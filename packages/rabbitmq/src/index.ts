export * as RabbitMq from "./RabbitMq.ts"
export * as Topology from "./Topology.ts"
