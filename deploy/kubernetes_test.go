package deploy_test

import (
	"bytes"
	"flag"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

var updateRule = flag.Bool("update-rule", false, "rewrite deploy/kubernetes/prometheusrule.yaml from deploy/prometheus/alerts.yml")

const (
	k8sDir       = root + "/deploy/kubernetes"
	alertsFile   = root + "/deploy/prometheus/alerts.yml"
	ruleManifest = k8sDir + "/prometheusrule.yaml"
)

// rendered is what `kubectl apply -k deploy/kubernetes` would send: every
// object of the kustomization, decoded strictly into its API type.
type rendered []runtime.Object

// render builds the kustomization with kustomize's own Go API and decodes
// each object strictly (unknown or duplicate fields fail) against the
// Kubernetes and Prometheus Operator API types; a kind outside them fails.
func render(t *testing.T) rendered {
	t.Helper()
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), k8sDir)
	if err != nil {
		t.Fatalf("kustomize build: %v", err)
	}
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, autoscalingv2.AddToScheme, batchv1.AddToScheme, policyv1.AddToScheme, monitoringv1.AddToScheme,
	} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	dec := serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()
	var out rendered
	for _, r := range rm.Resources() {
		j, err := r.MarshalJSON()
		if err != nil {
			t.Fatalf("%s: %v", r.CurId(), err)
		}
		obj, _, err := dec.Decode(j, nil, nil)
		if err != nil {
			t.Errorf("%s does not decode strictly: %v", r.CurId(), err)
			continue
		}
		out = append(out, obj)
	}
	if len(out) == 0 {
		t.Fatal("the kustomization renders no objects")
	}
	return out
}

// find returns the rendered object of type T named name, failing t if
// there is none. A ConfigMap from the generator is found by its name
// before kustomize's hash suffix.
func find[T interface {
	runtime.Object
	GetName() string
}](t *testing.T, objs rendered, name string) T {
	t.Helper()
	for _, o := range objs {
		if v, ok := o.(T); ok && (v.GetName() == name || strings.HasPrefix(v.GetName(), name+"-")) {
			return v
		}
	}
	var zero T
	t.Fatalf("no %T %q in the kustomization", zero, name)
	return zero
}

func TestKubernetes(t *testing.T) {
	objs := render(t)
	counter := find[*appsv1.Deployment](t, objs, "counter")
	web := find[*appsv1.Deployment](t, objs, "web")
	producer := find[*batchv1.Job](t, objs, "producer")
	election := find[*corev1.ConfigMap](t, objs, "votestream-election")
	for _, o := range objs {
		m := o.(metav1.Object)
		if ns := m.GetNamespace(); ns != "votestream" && o.GetObjectKind().GroupVersionKind().Kind != "Namespace" {
			t.Errorf("%s %s: namespace %q, want votestream", o.GetObjectKind().GroupVersionKind().Kind, m.GetName(), ns)
		}
	}

	for _, w := range []struct {
		name, port  string
		pod         corev1.PodTemplateSpec
		minReplicas int32
	}{
		{"counter", "9102", counter.Spec.Template, 2},
		{"web", "9102", web.Spec.Template, 2},
		{"producer", "9101", producer.Spec.Template, 0},
	} {
		t.Run(w.name, func(t *testing.T) {
			checkWorkload(t, objs, w.name, w.port, w.pod)
			// The election comes from the generated ConfigMap alone, so the
			// producer and the counters cannot disagree on it.
			c := w.pod.Spec.Containers[0]
			if !slices.ContainsFunc(c.EnvFrom, func(e corev1.EnvFromSource) bool {
				return e.ConfigMapRef != nil && e.ConfigMapRef.Name == election.Name
			}) {
				t.Errorf("envFrom does not read the generated ConfigMap %s", election.Name)
			}
			for _, e := range c.Env {
				if _, ok := election.Data[e.Name]; ok {
					t.Errorf("env sets %s, which ConfigMap votestream-election holds", e.Name)
				}
			}
		})
	}
	if counter.Spec.Replicas == nil || *counter.Spec.Replicas < 2 {
		t.Errorf("counter replicas: got %v, want at least 2", counter.Spec.Replicas)
	}
	for _, k := range []string{"SCALE", "ELECTION", "INCLUDE_DC"} {
		if _, ok := election.Data[k]; !ok {
			t.Errorf("ConfigMap votestream-election: no %s", k)
		}
	}
	if election.Name == "votestream-election" {
		t.Error("ConfigMap votestream-election has no hash suffix: a change would not roll the pods")
	}

	t.Run("producer job", func(t *testing.T) {
		spec := producer.Spec.Template.Spec
		if spec.RestartPolicy != corev1.RestartPolicyNever {
			t.Errorf("restartPolicy %q, want Never (podFailurePolicy needs it)", spec.RestartPolicy)
		}
		p := producer.Spec.PodFailurePolicy
		if p == nil || !slices.ContainsFunc(p.Rules, func(r batchv1.PodFailurePolicyRule) bool {
			return r.Action == batchv1.PodFailurePolicyActionIgnore && slices.ContainsFunc(r.OnPodConditions, func(c batchv1.PodFailurePolicyOnPodConditionsPattern) bool {
				return c.Type == corev1.DisruptionTarget
			})
		}) {
			t.Errorf("podFailurePolicy %+v: want DisruptionTarget ignored (retried without counting as a failure)", p)
		}
		if len(spec.Volumes) != 0 {
			t.Errorf("volumes %+v: the file drop is off on Kubernetes", spec.Volumes)
		}
		vars := podEnv(t, objs, producer.Spec.Template)
		if dir, ok := vars["OUTPUT_DIR"]; !ok || dir != "" {
			t.Errorf("OUTPUT_DIR=%q (set %v): want it set empty, which turns the file drop off", dir, ok)
		}
	})

	t.Run("disruption budget and spread select the counters", func(t *testing.T) {
		pdb := find[*policyv1.PodDisruptionBudget](t, objs, "counter")
		if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 || pdb.Spec.MinAvailable != nil {
			t.Errorf("PDB: maxUnavailable %v minAvailable %v, want maxUnavailable 1", pdb.Spec.MaxUnavailable, pdb.Spec.MinAvailable)
		}
		selects(t, "PDB", pdb.Spec.Selector, counter.Spec.Template.Labels, producer.Spec.Template.Labels)
		spread := counter.Spec.Template.Spec.TopologySpreadConstraints
		if !slices.ContainsFunc(spread, func(c corev1.TopologySpreadConstraint) bool {
			if c.TopologyKey != corev1.LabelHostname || c.MaxSkew != 1 {
				return false
			}
			selects(t, "topologySpreadConstraint", c.LabelSelector, counter.Spec.Template.Labels, producer.Spec.Template.Labels)
			return true
		}) {
			t.Errorf("counter: no topologySpreadConstraint with maxSkew 1 on %s: %+v", corev1.LabelHostname, spread)
		}
	})

	t.Run("monitoring", func(t *testing.T) {
		pm := find[*monitoringv1.PodMonitor](t, objs, "votestream")
		if pm.Spec.JobLabel != "app.kubernetes.io/name" {
			t.Errorf("PodMonitor jobLabel %q, want app.kubernetes.io/name", pm.Spec.JobLabel)
		}
		// The rules key on app_kubernetes_io_name, which annotation
		// scraping's labelmap also makes.
		if !slices.Contains(pm.Spec.PodTargetLabels, "app.kubernetes.io/name") {
			t.Errorf("PodMonitor podTargetLabels %v: want app.kubernetes.io/name, the label the rules read", pm.Spec.PodTargetLabels)
		}
		if len(pm.Spec.PodMetricsEndpoints) != 1 || ptrString(pm.Spec.PodMetricsEndpoints[0].Port) != "http" {
			t.Errorf("PodMonitor endpoints: got %+v, want port http", pm.Spec.PodMetricsEndpoints)
		}
		sel, err := metav1.LabelSelectorAsSelector(&pm.Spec.Selector)
		if err != nil {
			t.Fatal(err)
		}
		for _, pod := range []map[string]string{counter.Spec.Template.Labels, producer.Spec.Template.Labels} {
			if !sel.Matches(labels.Set(pod)) {
				t.Errorf("PodMonitor does not select pods labelled %v", pod)
			}
		}
		rule := find[*monitoringv1.PrometheusRule](t, objs, "votestream")
		for _, m := range []metav1.Object{pm, rule} {
			if m.GetLabels()["release"] == "" {
				t.Errorf("%s: no release label, which kube-prometheus-stack's default selectors need", m.GetName())
			}
		}
		if len(rule.Spec.Groups) == 0 || len(rule.Spec.Groups[0].Rules) == 0 {
			t.Error("PrometheusRule has no rules")
		}
	})
	t.Run("roles", func(t *testing.T) {
		for _, w := range []struct {
			role string
			pod  corev1.PodTemplateSpec
		}{{"count", counter.Spec.Template}, {"serve", web.Spec.Template}} {
			if got := podEnv(t, objs, w.pod)["ROLE"]; got != w.role {
				t.Errorf("%s: ROLE=%q, want %q", w.pod.Labels["app.kubernetes.io/name"], got, w.role)
			}
		}
		find[*corev1.Service](t, objs, "web")
		hpa := find[*autoscalingv2.HorizontalPodAutoscaler](t, objs, "web")
		if r := hpa.Spec.ScaleTargetRef; r.Kind != "Deployment" || r.Name != "web" {
			t.Errorf("HorizontalPodAutoscaler web scales %s %s, want Deployment web", r.Kind, r.Name)
		}
		if m := hpa.Spec.Metrics; len(m) != 1 || m[0].Resource == nil || m[0].Resource.Name != corev1.ResourceCPU {
			t.Errorf("HorizontalPodAutoscaler web: metrics %+v, want cpu", m)
		}
		if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas < 2 || hpa.Spec.MaxReplicas <= *hpa.Spec.MinReplicas {
			t.Errorf("HorizontalPodAutoscaler web: %v to %d replicas, want from at least 2, up", hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas)
		}
		pm := find[*monitoringv1.PodMonitor](t, objs, "votestream")
		sel, err := metav1.LabelSelectorAsSelector(&pm.Spec.Selector)
		if err != nil {
			t.Fatal(err)
		}
		if !sel.Matches(labels.Set(web.Spec.Template.Labels)) {
			t.Error("PodMonitor does not select the web pods, which export the election metrics")
		}
	})
	find[*corev1.Service](t, objs, "counter")
}

// ptrString is the string of an optional port name.
func ptrString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// selects fails t unless sel matches the pod labels want and not other.
func selects(t *testing.T, what string, sel *metav1.LabelSelector, want, other map[string]string) {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil || sel == nil || s.Empty() {
		t.Errorf("%s: selector %v (%v) selects everything or nothing", what, sel, err)
		return
	}
	if !s.Matches(labels.Set(want)) {
		t.Errorf("%s: selector %s does not select the counter pods %v", what, s, want)
	}
	if s.Matches(labels.Set(other)) {
		t.Errorf("%s: selector %s also selects the producer's pods %v", what, s, other)
	}
}

// checkWorkload checks one pod template against the service it runs.
func checkWorkload(t *testing.T, objs rendered, svc, port string, pod corev1.PodTemplateSpec) {
	t.Helper()
	if pod.Annotations["prometheus.io/scrape"] != "true" || pod.Annotations["prometheus.io/port"] != port {
		t.Errorf("scrape annotations: got %v, want scrape true on port %s", pod.Annotations, port)
	}
	if pod.Labels["app.kubernetes.io/name"] != svc {
		t.Errorf("pod label app.kubernetes.io/name: got %q, want %q (job and app_kubernetes_io_name)", pod.Labels["app.kubernetes.io/name"], svc)
	}
	sc := pod.Spec.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Error("pod securityContext: runAsNonRoot is not set")
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	// A placeholder the user must replace: nothing pullable from a
	// namespace we do not own.
	if !strings.HasPrefix(c.Image, "registry.invalid/") {
		t.Errorf("image %q: want the registry.invalid/ placeholder the kustomization documents", c.Image)
	}
	csc := c.SecurityContext
	if csc == nil || csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem ||
		csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation {
		t.Errorf("container securityContext: want readOnlyRootFilesystem and no privilege escalation, got %+v", csc)
	}
	vars := podEnv(t, objs, pod)
	checkEnv(t, svc, vars)
	if vars["HTTP_ADDR"] != ":"+port {
		t.Errorf("HTTP_ADDR=%q, the pod scrapes :%s", vars["HTTP_ADDR"], port)
	}
	if len(c.Ports) != 1 || c.Ports[0].Name != "http" || strconv.Itoa(int(c.Ports[0].ContainerPort)) != port {
		t.Errorf("ports: got %+v, want http %s", c.Ports, port)
	}
}

// podEnv is the environment of the pod's first container: its ConfigMaps'
// data, then its own env (a valueFrom stands for a value).
func podEnv(t *testing.T, objs rendered, pod corev1.PodTemplateSpec) map[string]string {
	t.Helper()
	c := pod.Spec.Containers[0]
	vars := map[string]string{}
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef == nil {
			t.Errorf("envFrom %+v: only ConfigMaps expected", ef)
			continue
		}
		cm := find[*corev1.ConfigMap](t, objs, ef.ConfigMapRef.Name)
		if cm.Name != ef.ConfigMapRef.Name {
			t.Errorf("envFrom %q: the ConfigMap is named %q", ef.ConfigMapRef.Name, cm.Name)
		}
		for k, v := range cm.Data {
			vars[k] = v
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			vars[e.Name] = "from-the-downward-api"
			continue
		}
		vars[e.Name] = e.Value
	}
	return vars
}

// ruleHeader starts the generated PrometheusRule; alerts.yml's groups,
// indented, are its spec.
const ruleHeader = `# Generated from deploy/prometheus/alerts.yml, whose comments explain the
# rules: do not edit. After a change to alerts.yml, run
#   go test ./deploy -run TestPrometheusRule -update-rule
# The release label selects it in kube-prometheus-stack's default
# ruleSelector: set it to your Helm release's name.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: votestream
  labels:
    app.kubernetes.io/name: votestream
    release: kube-prometheus-stack
spec:
`

// prometheusRule returns the PrometheusRule manifest for alerts.yml: its
// header comment dropped, the rest indented under spec.
func prometheusRule(alerts []byte) []byte {
	var b bytes.Buffer
	b.WriteString(ruleHeader)
	lines := strings.SplitAfter(string(alerts), "\n")
	i := 0
	for i < len(lines) && (strings.HasPrefix(lines[i], "#") || strings.TrimSpace(lines[i]) == "") {
		i++
	}
	for _, l := range lines[i:] {
		if strings.TrimSpace(l) != "" {
			b.WriteString("  ")
		}
		b.WriteString(l)
	}
	return b.Bytes()
}

// TestPrometheusRule keeps the PrometheusRule the same as alerts.yml, which
// promtool checks and tests.
func TestPrometheusRule(t *testing.T) {
	alerts, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	want := prometheusRule(alerts)
	if *updateRule {
		if err := os.WriteFile(ruleManifest, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(ruleManifest)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from what %s gives; run go test ./deploy -run TestPrometheusRule -update-rule", ruleManifest, alertsFile)
	}
}
