package revocation

// JoinFeeds returns a feed that relays every change any of feeds hears
// of, and is listening while at least one of them is: a change made by
// any replica reaches this one by every channel that is up (PostgreSQL
// NOTIFY and Redis pub/sub both carry every change), so one channel up is
// enough to stop polling. nil feeds are skipped; with none left it
// returns nil, with one it returns that one.
func JoinFeeds(feeds ...Feed) Feed {
	var j joined
	for _, f := range feeds {
		if f != nil {
			j = append(j, f)
		}
	}
	switch len(j) {
	case 0:
		return nil
	case 1:
		return j[0]
	}
	return j
}

type joined []Feed

func (j joined) Subscribe(changed func()) func() {
	cancels := make([]func(), len(j))
	for i, f := range j {
		cancels[i] = f.Subscribe(changed)
	}
	return func() {
		for _, c := range cancels {
			c()
		}
	}
}

func (j joined) Listening() bool {
	for _, f := range j {
		if f.Listening() {
			return true
		}
	}
	return false
}

// Unheard is the feed of a replica told to hear of no change
// (revocation.feed: none): it never listens, so the replica polls the
// store every poll interval.
var Unheard Feed = unheard{}

type unheard struct{}

func (unheard) Subscribe(func()) func() { return func() {} }
func (unheard) Listening() bool         { return false }
