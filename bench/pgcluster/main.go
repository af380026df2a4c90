// Command pgcluster starts a throwaway PostgreSQL cluster on a loopback
// port (from the PostgreSQL installed on this machine), creates the
// databases named on its command line, prints one postgres:// URL per
// database, and runs until it gets SIGTERM or SIGINT; then it stops the
// cluster and removes its files. bench/run uses it.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/gitpoli/gitpoli/internal/pgtest"
)

func main() {
	c, err := pgtest.StartCluster()
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgcluster:", err)
		os.Exit(1)
	}
	defer c.Stop()
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	for _, name := range os.Args[1:] {
		u, err := c.CreateDatabase(context.Background(), name)
		if err != nil {
			fmt.Fprintln(os.Stderr, "pgcluster:", err)
			c.Stop()
			os.Exit(1)
		}
		fmt.Println(u)
	}
	<-stop
}
