// Command example-server is a tiny game server that keeps the game server contract
// (docs/game-servers.md): it relays each player's messages to the other players of its room.
// Usher's local mode starts it by default; tests and benchmarks use it as the game server.
package main

import (
	"os"

	"github.com/usher-gg/usher/internal/exampleserver"
)

func main() { os.Exit(exampleserver.Main()) }
