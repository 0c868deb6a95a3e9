// Package agones is Usher's own typed subset of the Agones API (GameServer,
// GameServerAllocation, Fleet, FleetAutoscaler) and a client for it over client-go.
// The Go module agones.dev/agones is not used: these types are written from the Agones
// reference and checked against its CRD schemas. It never imports Usher's internal packages.
//
// Client.Allocate creates GameServerAllocations (201 for every outcome: check
// Status.State). NewGameServerInformer lists and watches GameServers with plain REST
// requests decoded straight into *GameServer, as a generated typed client would, so the
// same code runs against a real API server and against package agonestest's fake.
package agones
