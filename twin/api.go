package twin

import "github.com/hybridtwin/hybridtwin/twin/api"

// The words of the twin's API live in package twin/api; these are their names in package twin.
type (
	StepName            = api.StepName
	StepError           = api.StepError
	CapacityError       = api.CapacityError
	LifecycleOp         = api.Op
	LifecycleStep       = api.LifecycleStep
	ClusterReport       = api.ClusterReport
	VMPlacement         = api.VMPlacement
	RunProfile          = api.RunProfile
	Status              = api.Status
	ComponentStatus     = api.ComponentStatus
	ProcessRestart      = api.ProcessRestart
	HostState           = api.HostState
	VMState             = api.VMState
	ClusterStatus       = api.ClusterStatus
	NodeStatus          = api.NodeStatus
	GitOpsStatus        = api.GitOpsStatus
	KustomizationStatus = api.KustomizationStatus
	Info                = api.Info
	// LifecycleStepName and OpError are the older names of StepName and StepError: Up and the cluster
	// operations now speak one vocabulary and fail with one error type.
	LifecycleStepName = api.StepName
	OpError           = api.StepError
)

// Steps and stages (api.StepName).
const (
	StepPlan             = api.StepPlan
	StepState            = api.StepState
	StepGitea            = api.StepGitea
	StepRegistry         = api.StepRegistry
	StepArc              = api.StepArc
	StepImages           = api.StepImages
	StepArtifacts        = api.StepArtifacts
	StepSeed             = api.StepSeed
	StepKubeconfig       = api.StepKubeconfig
	StepPlaced           = api.StepPlaced
	StepControlPlaneUp   = api.StepControlPlaneUp
	StepNodesReady       = api.StepNodesReady
	StepConnected        = api.StepConnected
	StepEngineStarted    = api.StepEngineStarted
	StepAddons           = api.StepAddons
	StepConfigured       = api.StepConfigured
	StepCompliant        = api.StepCompliant
	StepAgentStopped     = api.StepAgentStopped
	StepDisconnected     = api.StepDisconnected
	StepControlPlaneDown = api.StepControlPlaneDown
	StepReleased         = api.StepReleased
	StepNodesAdded       = api.StepNodesAdded
	StepNodesDrained     = api.StepNodesDrained
	StepNodesRemoved     = api.StepNodesRemoved
)

// Operations (api.Op).
const (
	OpUp              = api.OpUp
	OpRemoveCluster   = api.OpRemoveCluster
	OpAddCluster      = api.OpAddCluster
	OpRecreateCluster = api.OpRecreateCluster
	OpScalePool       = api.OpScalePool
)

// Files in the state directory, and the run profile.
const (
	KubeconfigFile    = api.KubeconfigFile
	GiteaTokenFile    = api.GiteaTokenFile
	InfoFile          = api.InfoFile
	ControlSocket     = api.ControlSocket
	DetachedLogFile   = api.DetachedLogFile
	ClustersDir       = api.ClustersDir
	RunProfileVersion = api.RunProfileVersion
)

var (
	ErrUp                  = api.ErrUp
	ErrLifecycle           = api.ErrLifecycle
	ErrRunning             = api.ErrRunning
	ErrNotRunning          = api.ErrNotRunning
	ErrNoReconcilerMetrics = api.ErrNoReconcilerMetrics

	RunProfileFor   = api.RunProfileFor
	ReadInfo        = api.ReadInfo
	StateRoot       = api.StateRoot
	DefaultStateDir = api.DefaultStateDir
	SocketPath      = api.SocketPath
)
