package bridge

// SetAfterTick makes the health and seat loops call f after each pass driven by a ticker,
// so a test with a fake clock knows when a tick has been handled. Call it before Run.
func (a *App) SetAfterTick(f func()) { a.backend.afterTick = f }
