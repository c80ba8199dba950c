package testutil

import "context"

// RequestIDKey is the ctx key of the request id that RequestIDs carries.
type RequestIDKey struct{}

// RequestIDs is a test propagator (it has the methods of
// aplex.Propagator): it carries the request id under RequestIDKey as the
// header "x-request-id". The id "panic" makes Inject panic, for the tests
// of a propagator that fails.
type RequestIDs struct{}

// Inject writes the ctx's request id, if any, into carrier.
func (RequestIDs) Inject(ctx context.Context, carrier map[string]string) {
	if id, ok := ctx.Value(RequestIDKey{}).(string); ok {
		if id == "panic" {
			panic("cannot inject")
		}
		carrier["x-request-id"] = id
	}
}

// Extract returns ctx with the request id carrier holds, if any.
func (RequestIDs) Extract(ctx context.Context, carrier map[string]string) context.Context {
	if id, ok := carrier["x-request-id"]; ok {
		return context.WithValue(ctx, RequestIDKey{}, id)
	}
	return ctx
}
