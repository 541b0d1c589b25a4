// Command ctl is the admin tool: it must not link the store.
package main

import (
	"fmt"

	"example.com/tiny/client"
	"example.com/tiny/wire"
)

func main() { fmt.Println(client.Send(wire.Event{Seq: 1})) }
