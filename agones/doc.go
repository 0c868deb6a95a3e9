// Package agones is Usher's own typed subset of the Agones API (GameServer,
// GameServerAllocation, Fleet, FleetAutoscaler) and a client for it over client-go.
// The Go module agones.dev/agones is not used: these types are written from the Agones
// reference and checked against its CRD schemas. It never imports Usher's internal packages.
package agones
