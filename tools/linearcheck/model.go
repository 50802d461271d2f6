package main

import (
	"fmt"
	"hash/fnv"
	"math"

	"github.com/anishathalye/porcupine"
)

// phase is where a collector's one valid token stands.
type phase uint8

const (
	absent  phase = iota // not created yet
	live                 // exists with token state.token
	deleted              // deleted; no token is valid again
)

// state is the register of one collector. A live state with an empty token is
// a token nobody holds: a rotate or create whose response never arrived may
// have installed one, and no poll can be accepted with it. All such tokens
// are alike to the model, so one value stands for them.
type state struct {
	phase phase
	token string
}

func (s state) String() string {
	switch s.phase {
	case absent:
		return "absent"
	case deleted:
		return "deleted"
	}
	if s.token == "" {
		return "valid: (token no client learned)"
	}
	return "valid: " + s.token
}

// input is what a client sent; output is the outcome string.
type input struct {
	collector string
	kind      string
	token     string
}

// opMeta is shown in the visualization next to each operation.
type opMeta struct {
	line    int
	client  int
	node    string
	pending bool
}

func (m opMeta) String() string {
	s := fmt.Sprintf("line %d, client %d", m.line, m.client)
	if m.node != "" {
		s += ", node " + m.node
	}
	if m.pending {
		s += ", pending (no answer: may take effect any time after its call)"
	}
	return s
}

// step lists every state the collector can be in after the operation, given
// the outcome the client saw; none means the outcome is impossible in s.
func step(s state, in input, outcome string) []state {
	installed := state{phase: live, token: in.token} // token "" = nobody holds it
	switch in.kind {
	case "create":
		switch outcome {
		case "ok":
			if s.phase == absent {
				return []state{installed}
			}
		case "unknown":
			if s.phase == absent {
				return []state{s, installed}
			}
			return []state{s}
		}
	case "poll":
		valid := s.phase == live && s.token == in.token
		switch outcome {
		case "accepted":
			if valid {
				return []state{s}
			}
		case "refused":
			if !valid {
				return []state{s}
			}
		case "unknown":
			return []state{s}
		}
	case "rotate":
		switch outcome {
		case "ok":
			if s.phase == live {
				return []state{installed}
			}
		case "not_found":
			if s.phase != live {
				return []state{s}
			}
		case "unknown":
			if s.phase == live {
				return []state{s, installed}
			}
			return []state{s}
		}
	case "delete":
		switch outcome {
		case "ok":
			if s.phase == live {
				return []state{{phase: deleted}}
			}
		case "not_found":
			if s.phase != live {
				return []state{s}
			}
		case "unknown":
			if s.phase == live {
				return []state{s, {phase: deleted}}
			}
			return []state{s}
		}
	}
	return nil
}

// partitionByCollector keeps collectors apart: each one's register is
// independent, so each is checked alone (and in parallel) by porcupine.
func partitionByCollector(history []porcupine.Operation) [][]porcupine.Operation {
	index := map[string]int{}
	var parts [][]porcupine.Operation
	for _, o := range history {
		c := o.Input.(input).collector
		i, ok := index[c]
		if !ok {
			i = len(parts)
			index[c] = i
			parts = append(parts, nil)
		}
		parts[i] = append(parts[i], o)
	}
	return parts
}

func tokenModel() porcupine.Model {
	nm := porcupine.NondeterministicModel{
		Partition: partitionByCollector,
		Init:      func() []interface{} { return []interface{}{state{phase: absent}} },
		Step: func(s, in, out interface{}) []interface{} {
			next := step(s.(state), in.(input), out.(string))
			res := make([]interface{}, len(next))
			for i, n := range next {
				res[i] = n
			}
			return res
		},
		Hash: func(s interface{}) uint64 {
			st := s.(state)
			h := fnv.New64a()
			h.Write([]byte{byte(st.phase)})
			h.Write([]byte(st.token))
			return h.Sum64()
		},
		DescribeOperation: func(in, out interface{}) string {
			i := in.(input)
			if i.token == "" {
				return fmt.Sprintf("%s(%s) -> %s", i.kind, i.collector, out)
			}
			return fmt.Sprintf("%s(%s, %s) -> %s", i.kind, i.collector, i.token, out)
		},
		DescribeState: func(s interface{}) string { return s.(state).String() },
		DescribeOperationMetadata: func(m interface{}) string {
			if m == nil {
				return ""
			}
			return m.(opMeta).String()
		},
	}
	return nm.ToModel()
}

// operations turns parsed lines into porcupine operations. Pending operations
// return after every recorded event, so the checker may place their effect
// (or none) anywhere after their call.
func operations(ops []op) []porcupine.Operation {
	var end int64
	for _, o := range ops {
		end = max(end, o.Call)
		if !o.Pending {
			end = max(end, o.Return)
		}
	}
	if end < math.MaxInt64 {
		end++
	}
	res := make([]porcupine.Operation, len(ops))
	for i, o := range ops {
		ret := o.Return
		if o.Pending {
			ret = end
		}
		res[i] = porcupine.Operation{
			ClientId: o.Client,
			Input:    input{collector: o.Collector, kind: o.Kind, token: o.Token},
			Call:     o.Call,
			Output:   o.Outcome,
			Return:   ret,
			Metadata: opMeta{line: o.Line, client: o.Client, node: o.Node, pending: o.Pending},
		}
	}
	return res
}
