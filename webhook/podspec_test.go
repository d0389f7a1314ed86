package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
)

const podSpecJSON = `{"serviceAccountName":"builder","imagePullSecrets":[{"name":"a"},{"name":"b"}],"containers":[{"name":"app","image":"registry.internal:5000/order-service:1.4.2"}]}`

func TestExtractPodRefs(t *testing.T) {
	t.Parallel()
	want := func(path string) PodRefs {
		return PodRefs{SpecPath: path, ImagePullSecrets: []string{"a", "b"}, ServiceAccountName: "builder"}
	}
	tests := map[string]struct {
		kind    string
		raw     string
		want    PodRefs
		wantErr string
	}{
		"Deployment":  {kind: "Deployment", raw: `{"spec":{"replicas":3,"template":{"spec":` + podSpecJSON + `}}}`, want: want("spec.template.spec")},
		"StatefulSet": {kind: "StatefulSet", raw: `{"spec":{"template":{"spec":` + podSpecJSON + `}}}`, want: want("spec.template.spec")},
		"DaemonSet":   {kind: "DaemonSet", raw: `{"spec":{"template":{"spec":` + podSpecJSON + `}}}`, want: want("spec.template.spec")},
		"ReplicaSet":  {kind: "ReplicaSet", raw: `{"spec":{"template":{"spec":` + podSpecJSON + `}}}`, want: want("spec.template.spec")},
		"Job":         {kind: "Job", raw: `{"spec":{"template":{"spec":` + podSpecJSON + `}}}`, want: want("spec.template.spec")},
		"CronJob":     {kind: "CronJob", raw: `{"spec":{"schedule":"* * * * *","jobTemplate":{"spec":{"template":{"spec":` + podSpecJSON + `}}}}}`, want: want("spec.jobTemplate.spec.template.spec")},
		"Pod":         {kind: "Pod", raw: `{"spec":` + podSpecJSON + `}`, want: want("spec")},
		"default service account": {
			kind: "Pod", raw: `{"spec":{"containers":[]}}`,
			want: PodRefs{SpecPath: "spec", ServiceAccountName: "default"},
		},
		"deprecated serviceAccount alias": {
			kind: "Pod", raw: `{"spec":{"serviceAccount":"old"}}`,
			want: PodRefs{SpecPath: "spec", ServiceAccountName: "old"},
		},
		"suspended Job": {
			kind: "Job", raw: `{"spec":{"suspend":true,"template":{"spec":{}}}}`,
			want: PodRefs{SpecPath: "spec.template.spec", ServiceAccountName: "default", Suspended: true},
		},
		"suspended CronJob": {
			kind: "CronJob", raw: `{"spec":{"suspend":true,"jobTemplate":{"spec":{"template":{"spec":{}}}}}}`,
			want: PodRefs{SpecPath: "spec.jobTemplate.spec.template.spec", ServiceAccountName: "default", Suspended: true},
		},
		"suspend false": {
			kind: "Job", raw: `{"spec":{"suspend":false,"template":{"spec":{}}}}`,
			want: PodRefs{SpecPath: "spec.template.spec", ServiceAccountName: "default"},
		},
		"suspend is not read for a Deployment": {
			kind: "Deployment", raw: `{"spec":{"suspend":true,"template":{"spec":{}}}}`,
			want: PodRefs{SpecPath: "spec.template.spec", ServiceAccountName: "default"},
		},
		"unsupported kind": {kind: "ConfigMap", raw: `{}`, wantErr: `unsupported kind "ConfigMap"`},
		"not JSON":         {kind: "Deployment", raw: `{"spec":`, wantErr: "decoding Deployment: unexpected end of JSON input"},
		"no template":      {kind: "Deployment", raw: `{"spec":{}}`, wantErr: "decoding Deployment: pod template is missing"},
		"null template":    {kind: "CronJob", raw: `{"spec":{"jobTemplate":{"spec":{"template":null}}}}`, wantErr: "decoding CronJob: pod template is missing"},
		"no pod spec":      {kind: "Pod", raw: `{"metadata":{}}`, wantErr: "decoding Pod: spec is missing"},
		"wrong type":       {kind: "Deployment", raw: `{"spec":{"template":{"spec":{"imagePullSecrets":"a"}}}}`, wantErr: "decoding Deployment pod template: json: cannot unmarshal string into Go struct field rawPodSpec.spec.imagePullSecrets of type []struct { Name string \"json:\\\"name\\\"\" }"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := ExtractPodRefs(tc.kind, []byte(tc.raw))
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got.template = nil
			tc.want.Kind = tc.kind
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	if _, err := ExtractPodRefs("Service", nil); !errors.Is(err, ErrUnsupportedKind) {
		t.Errorf("err = %v, want ErrUnsupportedKind", err)
	}
}

func TestTemplateChanged(t *testing.T) {
	t.Parallel()
	base := `{"metadata":{"labels":{"app":"x"}},"spec":{"replicas":%s,"template":{"metadata":{"annotations":{%s}},"spec":{"serviceAccountName":"%s"}}}}`
	tests := map[string]struct {
		replicas, annotations, sa string
		changed                   bool
	}{
		"replicas only":   {replicas: "5", sa: "default", changed: false},
		"rollout restart": {replicas: "3", annotations: `"kubectl.kubernetes.io/restartedAt":"2026-11-27T10:00:00Z"`, sa: "default", changed: true},
		"service account": {replicas: "3", sa: "builder", changed: true},
	}
	oldRefs, err := ExtractPodRefs("Deployment", []byte(fmt.Sprintf(base, "3", "", "default")))
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			newRefs, err := ExtractPodRefs("Deployment", []byte(fmt.Sprintf(base, tc.replicas, tc.annotations, tc.sa)))
			if err != nil {
				t.Fatal(err)
			}
			if got := TemplateChanged(oldRefs, newRefs); got != tc.changed {
				t.Errorf("TemplateChanged = %v, want %v", got, tc.changed)
			}
		})
	}
}

// FuzzExtractPodRefs feeds arbitrary bytes as every kind: extraction must return refs or an error,
// never panic, and a successful result always names a service account.
func FuzzExtractPodRefs(f *testing.F) {
	for kind := range SupportedKinds {
		f.Add(kind, []byte(`{"spec":{"template":{"spec":`+podSpecJSON+`}}}`))
	}
	f.Add("CronJob", []byte(`{"spec":{"jobTemplate":{"spec":{"template":{"spec":`+podSpecJSON+`}}}}}`))
	f.Add("Pod", []byte(`{"spec":`+podSpecJSON+`}`))
	f.Add("Pod", []byte(`{"spec":null}`))
	f.Add("Deployment", []byte(`[]`))
	f.Fuzz(func(t *testing.T, kind string, raw []byte) {
		refs, err := ExtractPodRefs(kind, raw)
		if err != nil {
			return
		}
		if refs.ServiceAccountName == "" || refs.SpecPath == "" {
			t.Fatalf("refs without service account or path: %+v", refs)
		}
	})
}

// FuzzExtractFastMatchesStdlib: on valid JSON the scanner path yields what encoding/json yields.
func FuzzExtractFastMatchesStdlib(f *testing.F) {
	for kind := range SupportedKinds {
		f.Add(kind, []byte(`{"spec":{"template":{"spec":`+podSpecJSON+`}}}`))
	}
	f.Add("CronJob", []byte(`{"spec":{"jobTemplate":{"spec":{"template":{"spec":`+podSpecJSON+`}}}}}`))
	f.Add("Pod", []byte(`{"spec":`+podSpecJSON+`}`))
	f.Add("Deployment", []byte(`{"Spec":{"template":{"spec":{"imagePullSecrets":[null,{"name":"b"}]}},"template":null}}`))
	f.Fuzz(func(t *testing.T, kind string, raw []byte) {
		path, ok := SupportedKinds[kind]
		if !ok || !json.Valid(raw) {
			return
		}
		fast, errFast := extractFast(kind, path, raw)
		slow, errSlow := extractStd(kind, path, raw)
		if errFast != nil || errSlow != nil {
			return // ExtractPodRefs falls back to extractStd whenever the fast path gives up
		}
		if fast.ServiceAccountName != slow.ServiceAccountName || fast.Suspended != slow.Suspended || !reflect.DeepEqual(fast.ImagePullSecrets, slow.ImagePullSecrets) ||
			!bytes.Equal(fast.template, slow.template) {
			t.Fatalf("fast %+v (%s)\nslow %+v (%s)", fast, fast.template, slow, slow.template)
		}
	})
}
