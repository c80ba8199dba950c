package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/aplex-go/aplex"
	"github.com/aplex-go/aplex/cluster"
)

// clusterQuotaError is a registered error type with a pointer receiver.
type clusterQuotaError struct {
	User  string
	Limit int
}

func (e *clusterQuotaError) Error() string {
	return fmt.Sprintf("quota of %s exceeded (%d)", e.User, e.Limit)
}

// clusterHidden has an unexported field: refused as an argument.
type clusterHidden struct {
	Name  string
	limit int
}

var (
	regClusterQuota = aplex.RegisterErrorType[*clusterQuotaError]()

	typedFail = aplex.Register("cluster.typed-fail", func(_ context.Context, kind string) (int, error) {
		q := &clusterQuotaError{User: "ann", Limit: 100}
		switch kind {
		case "wrapped":
			return 0, fmt.Errorf("charging: %w (%w)", q, errSentinel)
		case "panic":
			panic(q)
		}
		return 0, q
	})
	hiddenArg = aplex.Register("cluster.hidden-arg", func(_ context.Context, a clusterHidden) (int, error) { return a.limit, nil })
)

// TestClusterErrorsAsTypedError: errors.As to a registered error type finds
// it with its fields intact from a cluster worker, returned, wrapped
// together with a registered sentinel, or as a panic value.
func TestClusterErrorsAsTypedError(t *testing.T) {
	if regClusterQuota != nil {
		t.Fatal(regClusterQuota)
	}
	ex := newExecutor(t, cluster.SpawnLocalWorkers(1), aplex.WithWorkerOutput(newTestLog(t)))
	want := clusterQuotaError{User: "ann", Limit: 100}
	for _, kind := range []string{"plain", "wrapped", "panic"} {
		_, err := get(t, submit(t, ex, typedFail, kind))
		var qe *clusterQuotaError
		if !errors.As(err, &qe) || *qe != want {
			t.Errorf("%s: %v, As gave %+v", kind, err, qe)
		}
		if kind == "wrapped" && !errors.Is(err, errSentinel) {
			t.Errorf("wrapped: %v does not match the registered sentinel", err)
		}
	}
}

// TestClusterUnexportedFieldIsErrEncoding: an argument with an unexported
// field is refused at Submit, not sent with the field zeroed.
func TestClusterUnexportedFieldIsErrEncoding(t *testing.T) {
	ex := newExecutor(t, cluster.SpawnLocalWorkers(1), aplex.WithWorkerOutput(newTestLog(t)))
	if _, err := aplex.Submit(context.Background(), ex, hiddenArg, clusterHidden{Name: "a", limit: 1}); !errors.Is(err, aplex.ErrEncoding) {
		t.Fatalf("Submit = %v, want ErrEncoding", err)
	}
}
