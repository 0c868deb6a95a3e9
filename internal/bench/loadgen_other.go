//go:build !linux

package bench

import (
	"errors"
	"time"
)

const generatorSupported = false

// On other systems the bench only validates its flags: the generator needs epoll and /proc.
type generator struct{}

func newGenerator(int, int, int) (*generator, error)                   { return nil, errors.New("needs Linux") }
func (g *generator) now() int64                                        { return 0 }
func (g *generator) stop()                                             {}
func (g *generator) add(int, uint32, []byte) error                     { return errors.New("needs Linux") }
func (g *generator) openConns() int                                    { return 0 }
func (g *generator) idleAll()                                          {}
func (g *generator) setLoad(loadMode, float64, int64, int64, slotting) {}
func (g *generator) collect() genStats                                 { return genStats{} }
func (g *generator) closeAll(time.Duration)                            {}
