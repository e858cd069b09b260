/*
 * errors.c — names for error codes, roles and message types.
 */
#include <seshat/raft.h>

const char *sr_strerror(int err)
{
	switch (err) {
	case SR_OK:
		return "success";
	case SR_ENOMEM:
		return "out of memory";
	case SR_EINVAL:
		return "invalid argument";
	case SR_ENOTLEADER:
		return "not the leader";
	case SR_EBUSY:
		return "too many uncommitted entries, retry later";
	case SR_ESHUTDOWN:
		return "node is shutting down";
	case SR_EUNKNOWN:
		return "outcome unknown: may or may not have been applied";
	case SR_EDROPPED:
		return "entry was overwritten by another leader and will not "
		       "be applied";
	case SR_EIO:
		return "I/O error";
	case SR_ENOSPC:
		return "no space left on device";
	case SR_ECORRUPT:
		return "data corruption detected";
	case SR_ESTATE:
		return "operation not valid in the current state";
	case SR_ETOOBIG:
		return "payload too large";
	case SR_ENOTFOUND:
		return "not found";
	case SR_EPROTO:
		return "malformed message or frame";
	case SR_ELOCKED:
		return "resource locked by another process";
	case SR_ETRANSFER:
		return "leadership transfer in progress";
	case SR_ECONFPENDING:
		return "a configuration change is already in progress";
	case SR_ENOQUORUM:
		return "leadership could not be confirmed by a quorum";
	case SR_ETIMEOUT:
		return "timed out";
	case SR_ECOMPACTED:
		return "entries were compacted into a snapshot";
	case SR_EEXIST:
		return "already exists";
	default:
		return "unknown error";
	}
}

const char *sr_role_name(int role)
{
	switch (role) {
	case SR_FOLLOWER:
		return "follower";
	case SR_PRECANDIDATE:
		return "precandidate";
	case SR_CANDIDATE:
		return "candidate";
	case SR_LEADER:
		return "leader";
	case SR_STOPPED:
		return "stopped";
	default:
		return "unknown";
	}
}

const char *sr_msg_type_name(uint32_t type)
{
	switch (type) {
	case SR_MSG_VOTE:
		return "vote";
	case SR_MSG_VOTE_RESP:
		return "vote_resp";
	case SR_MSG_APPEND:
		return "append";
	case SR_MSG_APPEND_RESP:
		return "append_resp";
	case SR_MSG_SNAPSHOT:
		return "snapshot";
	case SR_MSG_SNAPSHOT_RESP:
		return "snapshot_resp";
	case SR_MSG_TIMEOUT_NOW:
		return "timeout_now";
	case SR_MSG_READ_INDEX:
		return "read_index";
	case SR_MSG_READ_INDEX_RESP:
		return "read_index_resp";
	default:
		return "unknown";
	}
}
