package mesossim

import (
	"net/http"

	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// validateCall applies the master's call validation (answered 400 with
// "Failed to validate scheduler::Call: ..."): the type, its sub-message,
// framework_id rules and the fields the protobuf marks required.
func validateCall(call *scheduler.Call) *httpError {
	bad := func(msg string) *httpError {
		return fail(http.StatusBadRequest, "Failed to validate scheduler::Call: %s", msg)
	}
	if call.Type == scheduler.Call_UNKNOWN {
		return bad("Expecting 'type' to be present")
	}
	if _, known := scheduler.Call_Type_name[int32(call.Type)]; !known {
		return bad("Unknown call type " + call.Type.String() + " (not supported by mesos-sim)")
	}
	if call.Type == scheduler.Call_SUBSCRIBE {
		if call.Subscribe == nil {
			return bad("Expecting 'subscribe' to be present")
		}
		fi := call.Subscribe.FrameworkInfo
		if fi == nil {
			return bad("Expecting 'subscribe.framework_info' to be present")
		}
		if fi.User == "" {
			return bad("Expecting 'framework_info.user' to be present")
		}
		if fi.Name == "" {
			return bad("Expecting 'framework_info.name' to be present")
		}
		var infoID, callID string
		if fi.ID != nil {
			infoID = fi.ID.Value
		}
		if call.FrameworkID != nil {
			callID = call.FrameworkID.Value
		}
		if callID != infoID {
			return bad("'framework_id' differs from 'subscribe.framework_info.id'")
		}
		return nil
	}
	if call.FrameworkID == nil || call.FrameworkID.Value == "" {
		return bad("Expecting 'framework_id' to be present")
	}
	missing := func(name string) *httpError { return bad("Expecting '" + name + "' to be present") }
	switch call.Type {
	case scheduler.Call_ACCEPT:
		if call.Accept == nil {
			return missing("accept")
		}
	case scheduler.Call_DECLINE:
		if call.Decline == nil {
			return missing("decline")
		}
	case scheduler.Call_ACCEPT_INVERSE_OFFERS:
		if call.AcceptInverseOffers == nil {
			return missing("accept_inverse_offers")
		}
	case scheduler.Call_DECLINE_INVERSE_OFFERS:
		if call.DeclineInverseOffers == nil {
			return missing("decline_inverse_offers")
		}
	case scheduler.Call_KILL:
		if call.Kill == nil {
			return missing("kill")
		}
		if call.Kill.TaskID.Value == "" {
			return missing("kill.task_id")
		}
	case scheduler.Call_SHUTDOWN:
		if call.Shutdown == nil {
			return missing("shutdown")
		}
	case scheduler.Call_ACKNOWLEDGE:
		a := call.Acknowledge
		if a == nil {
			return missing("acknowledge")
		}
		if a.TaskID.Value == "" || a.AgentID.Value == "" {
			return bad("Expecting 'acknowledge.task_id' and 'acknowledge.agent_id' to be present")
		}
		if len(a.UUID) != 16 {
			return bad("Not a valid UUID: 'acknowledge.uuid' must be 16 bytes")
		}
	case scheduler.Call_ACKNOWLEDGE_OPERATION_STATUS:
		a := call.AcknowledgeOperationStatus
		if a == nil {
			return missing("acknowledge_operation_status")
		}
		if len(a.UUID) != 16 {
			return bad("Not a valid UUID: 'acknowledge_operation_status.uuid' must be 16 bytes")
		}
	case scheduler.Call_RECONCILE:
		if call.Reconcile == nil {
			return missing("reconcile")
		}
		for _, t := range call.Reconcile.Tasks {
			if t.TaskID.Value == "" {
				return bad("Expecting 'reconcile.tasks.task_id' to be present")
			}
		}
	case scheduler.Call_RECONCILE_OPERATIONS:
		if call.ReconcileOperations == nil {
			return missing("reconcile_operations")
		}
	case scheduler.Call_MESSAGE:
		if call.Message == nil {
			return missing("message")
		}
	case scheduler.Call_REQUEST:
		if call.Request == nil {
			return missing("request")
		}
	case scheduler.Call_UPDATE_FRAMEWORK:
		u := call.UpdateFramework
		if u == nil {
			return missing("update_framework")
		}
		if u.FrameworkInfo.ID == nil || u.FrameworkInfo.ID.Value != call.FrameworkID.Value {
			return bad("'framework_id' differs from 'update_framework.framework_info.id'")
		}
	}
	return nil
}
