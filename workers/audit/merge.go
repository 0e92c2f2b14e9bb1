package audit

import (
	"container/heap"
	"context"

	"github.com/roomstream/roomstream/streams"
)

// source yields items in id order.
type source[T any] interface {
	Next(ctx context.Context) (T, bool, error)
}

// merge calls fn with the items of every source in id order (ties in
// source order), holding one item per source.
func merge[T any](ctx context.Context, srcs []source[T], idOf func(T) streams.ID, fn func(T) error) error {
	h := &mergeHeap[T]{idOf: idOf}
	for i, s := range srcs {
		v, ok, err := s.Next(ctx)
		if err != nil {
			return err
		}
		if ok {
			h.items = append(h.items, headItem[T]{v: v, src: i})
		}
	}
	heap.Init(h)
	for h.Len() > 0 {
		top := h.items[0]
		if err := fn(top.v); err != nil {
			return err
		}
		v, ok, err := srcs[top.src].Next(ctx)
		if err != nil {
			return err
		}
		if ok {
			h.items[0].v = v
			heap.Fix(h, 0)
		} else {
			heap.Pop(h)
		}
	}
	return nil
}

type headItem[T any] struct {
	v   T
	src int
}

type mergeHeap[T any] struct {
	items []headItem[T]
	idOf  func(T) streams.ID
}

func (h *mergeHeap[T]) Len() int { return len(h.items) }
func (h *mergeHeap[T]) Less(i, j int) bool {
	a, b := h.idOf(h.items[i].v), h.idOf(h.items[j].v)
	if a == b {
		return h.items[i].src < h.items[j].src
	}
	return a.Less(b)
}
func (h *mergeHeap[T]) Swap(i, j int) { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *mergeHeap[T]) Push(x any)    { h.items = append(h.items, x.(headItem[T])) }
func (h *mergeHeap[T]) Pop() any {
	n := len(h.items)
	x := h.items[n-1]
	h.items = h.items[:n-1]
	return x
}

// chanSource reads items from a channel fed by a goroutine; err is read
// after the channel is closed.
type chanSource[T any] struct {
	ch  <-chan T
	err *error
}

func (s chanSource[T]) Next(ctx context.Context) (T, bool, error) {
	select {
	case v, ok := <-s.ch:
		if !ok {
			var zero T
			return zero, false, *s.err
		}
		return v, true, nil
	case <-ctx.Done():
		var zero T
		return zero, false, ctx.Err()
	}
}
