package ticket_test

import (
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/usher-gg/usher/internal/ticket"
	"github.com/usher-gg/usher/internal/ticket/tickettest"
)

func TestMemoryStoreContract(t *testing.T) {
	tickettest.RunStoreContract(t, func(t *testing.T, clk *clocktesting.FakeClock, ttl time.Duration) ticket.Store {
		s, err := ticket.NewMemoryStore(ticket.MemoryConfig{TTL: ttl}, clk)
		if err != nil {
			t.Fatalf("NewMemoryStore: %v", err)
		}
		return s
	})
}
