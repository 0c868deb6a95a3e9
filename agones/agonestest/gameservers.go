package agonestest

import (
	"fmt"
	"hash/fnv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/usher-gg/usher/agones"
)

// Addresses the GameServers made by GameServer get: the node's InternalIP (also
// status.address) and a pod IP, both from documentation ranges.
const (
	NodeName    = "node-1"
	NodeAddress = "192.0.2.10"
)

// GameServer returns a Ready GameServer of fleet in namespace, as a Fleet would create it
// (labels agones.dev/fleet and agones.dev/gameserverset), with a TCP port named portName
// (portPolicy Dynamic, containerPort 7777, a host port from 7000-7999 in status), an empty
// players list of the given capacity, and status addresses InternalIP NodeAddress and
// PodIP (see PodIP).
func GameServer(namespace, fleet, name, portName string, capacity int64) *agones.GameServer {
	return &agones.GameServer{
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: namespace,
			Labels: map[string]string{
				agones.LabelFleet:         fleet,
				agones.LabelGameServerSet: fleet + "-x7k2p",
			},
			Annotations: map[string]string{"agones.dev/sdk-version": "1.57.0"},
		},
		Spec: agones.GameServerSpec{
			Ports: []agones.GameServerPort{{
				Name: portName, PortPolicy: agones.PortPolicyDynamic, ContainerPort: 7777,
				HostPort: HostPort(name), Protocol: agones.ProtocolTCP,
			}},
			Health: agones.Health{PeriodSeconds: 5, FailureThreshold: 3, InitialDelaySeconds: 5},
			Lists:  map[string]agones.ListStatus{"players": {Capacity: capacity}},
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: "game", Image: "registry.example.com/game:1.0.0"}},
			}},
		},
		Status: agones.GameServerStatus{
			State:    agones.GameServerStateReady,
			Ports:    []agones.GameServerStatusPort{{Name: portName, Port: HostPort(name)}},
			Address:  NodeAddress,
			NodeName: NodeName,
			Addresses: []corev1.NodeAddress{
				{Type: corev1.NodeInternalIP, Address: NodeAddress},
				{Type: agones.AddressTypePodIP, Address: PodIP(name)},
			},
		},
	}
}

// HostPort is the host port GameServer gives a server of that name.
func HostPort(name string) int32 { return 7000 + int32(hash(name)%1000) }

// PodIP is the pod IP GameServer gives a server of that name.
func PodIP(name string) string {
	h := hash(name)
	return fmt.Sprintf("10.4.%d.%d", h>>8%250+1, h%250+1)
}

func hash(s string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return h.Sum32()
}
