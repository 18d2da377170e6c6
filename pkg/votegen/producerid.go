package votegen

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/votestream/votestream/pkg/vote"
)

// idPrefix starts every producer id.
const idPrefix = "votestream:"

// ProducerID names the election c published over partitions partitions
// (none named if 0): "votestream:seed=S,scale=X[,dc][,election=2024][,partitions=P]".
// Every record carries it, so the topic says which election it holds: the
// same election gives the same votes in the same order, so a restarted
// producer with it is the same producer and its repeated records are
// recognised as repeats, and a counter learns from it the votes to expect.
func ProducerID(c Config, partitions int) string {
	id := idPrefix + "seed=" + strconv.FormatUint(c.Seed, 10) + ",scale=" + strconv.FormatFloat(c.Scale, 'g', -1, 64)
	if c.IncludeDC {
		id += ",dc"
	}
	if c.Timed() {
		id += ",election=" + c.Election
	}
	if partitions > 0 {
		id += ",partitions=" + strconv.Itoa(partitions)
	}
	return id
}

// ParseProducerID reads an id ProducerID made: the election and the
// partitions it is published over, 0 if the id names none (producers
// before the count was recorded). Election is ElectionSeed or Election2024.
func ParseProducerID(id string) (c Config, partitions int, err error) {
	rest, ok := strings.CutPrefix(id, idPrefix)
	if !ok {
		return c, 0, fmt.Errorf("producer id %q: not votestream's", id)
	}
	c.Election = ElectionSeed
	var seed, scale bool
	for field := range strings.SplitSeq(rest, ",") {
		k, v, _ := strings.Cut(field, "=")
		switch k {
		case "seed":
			c.Seed, err = strconv.ParseUint(v, 10, 64)
			seed = true
		case "scale":
			c.Scale, err = strconv.ParseFloat(v, 64)
			scale = true
		case "dc":
			c.IncludeDC = true
		case "election":
			c.Election = v
		case "partitions":
			partitions, err = strconv.Atoi(v)
			if err == nil && partitions < 1 {
				err = fmt.Errorf("%d partitions", partitions)
			}
		default:
			err = fmt.Errorf("unknown field %q", field)
		}
		if err != nil {
			return Config{}, 0, fmt.Errorf("producer id %q: %w", id, err)
		}
	}
	if !seed || !scale {
		return Config{}, 0, fmt.Errorf("producer id %q: no seed or scale", id)
	}
	if err := vote.CheckScale(c.Scale); err != nil {
		return Config{}, 0, fmt.Errorf("producer id %q: scale %w", id, err)
	}
	if c.Election != ElectionSeed && c.Election != Election2024 {
		return Config{}, 0, fmt.Errorf("producer id %q: election %q", id, c.Election)
	}
	return c, partitions, nil
}
