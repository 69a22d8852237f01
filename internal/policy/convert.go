package policy

import "k8s.io/apimachinery/pkg/runtime"

func fromUnstructured(m map[string]any, into any) error {
	return runtime.DefaultUnstructuredConverter.FromUnstructured(m, into)
}
