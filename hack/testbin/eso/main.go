// Command external-secrets is ESO's controller entry point, built from its Go module for the test cache.
package main

import "github.com/external-secrets/external-secrets/cmd/controller"

func main() { controller.Execute() }
