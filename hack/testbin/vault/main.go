// Command vault is Vault's own CLI and server, built from its Go module for the test cache.
package main

import (
	"os"

	"github.com/hashicorp/vault/command"
)

func main() { os.Exit(command.Run(os.Args[1:])) }
