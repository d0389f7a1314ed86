package certs

import (
	"context"
	"fmt"
	"reflect"
	"strconv"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// fakeClient is the narrow part of client.Client the Rotator uses: Get, Create and Update of
// whole objects, with resourceVersion conflicts as the API server has them. Every other method
// goes to the nil embedded client and panics, so a test fails loudly if the Rotator starts
// listing, patching or watching.
type fakeClient struct {
	client.Client

	mu      sync.Mutex
	objects map[string]client.Object // by objectKey; guarded by mu
	writes  map[string]int           // Create/Update calls by objectKey; guarded by mu
	rv      int                      // last resourceVersion handed out; guarded by mu
}

var _ client.Client = (*fakeClient)(nil)

func newFakeClient(objs ...client.Object) *fakeClient {
	f := &fakeClient{objects: map[string]client.Object{}, writes: map[string]int{}}
	for _, o := range objs {
		if err := f.Create(context.Background(), o); err != nil {
			panic(err)
		}
	}
	return f
}

func objectKey(obj client.Object, key client.ObjectKey) string {
	return fmt.Sprintf("%T/%s", obj, key)
}

func notFound(obj client.Object, key client.ObjectKey) error {
	return apierrors.NewNotFound(schema.GroupResource{Resource: fmt.Sprintf("%T", obj)}, key.Name)
}

func (f *fakeClient) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	stored, ok := f.objects[objectKey(obj, key)]
	if !ok {
		return notFound(obj, key)
	}
	reflect.ValueOf(obj).Elem().Set(reflect.ValueOf(stored.DeepCopyObject()).Elem())
	return nil
}

func (f *fakeClient) Create(_ context.Context, obj client.Object, _ ...client.CreateOption) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := objectKey(obj, client.ObjectKeyFromObject(obj))
	if _, ok := f.objects[k]; ok {
		return apierrors.NewAlreadyExists(schema.GroupResource{Resource: fmt.Sprintf("%T", obj)}, obj.GetName())
	}
	f.store(k, obj)
	return nil
}

func (f *fakeClient) Update(_ context.Context, obj client.Object, _ ...client.UpdateOption) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := client.ObjectKeyFromObject(obj)
	k := objectKey(obj, key)
	stored, ok := f.objects[k]
	if !ok {
		return notFound(obj, key)
	}
	if obj.GetResourceVersion() != stored.GetResourceVersion() {
		return apierrors.NewConflict(schema.GroupResource{Resource: fmt.Sprintf("%T", obj)}, obj.GetName(), fmt.Errorf("resourceVersion %s, stored %s", obj.GetResourceVersion(), stored.GetResourceVersion()))
	}
	f.store(k, obj)
	return nil
}

// store keeps a copy with a fresh resourceVersion, which it also sets on obj. f.mu is held.
func (f *fakeClient) store(k string, obj client.Object) {
	f.rv++
	obj.SetResourceVersion(strconv.Itoa(f.rv))
	f.objects[k] = obj.DeepCopyObject().(client.Object)
	f.writes[k]++
}

// writeCount reports how many times obj's key was created or updated.
func (f *fakeClient) writeCount(obj client.Object) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writes[objectKey(obj, client.ObjectKeyFromObject(obj))]
}

// delete removes obj's key, as kubectl delete would.
func (f *fakeClient) delete(obj client.Object) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.objects, objectKey(obj, client.ObjectKeyFromObject(obj)))
}
