package connector

// members is this connector's view of which of its sockets are in which
// room, kept from the $join and $leave messages of its outbound stream.
// Those come in the same stream, in order, as the room's events, so a
// room event reaches exactly the sockets the room had when the worker
// applied it. Only the outbound reader touches it, with s.mu held for
// reading.
type members map[string]*roomMembers

// roomMembers are the local sockets of one room: a list to deliver to,
// and where each socket id is in it.
type roomMembers struct {
	list []member
	at   map[string]int
}

// member is a socket id in a room and the socket last found under it, so
// that a delivery needs no lookup; it is looked up again once that socket
// is no longer the one listed (it closed, or a recovery replaced it).
type member struct {
	sid string
	so  *socket
}

func (m members) add(room, sid string) {
	rm := m[room]
	if rm == nil {
		rm = &roomMembers{at: map[string]int{}}
		m[room] = rm
	}
	if _, in := rm.at[sid]; in {
		return
	}
	rm.at[sid] = len(rm.list)
	rm.list = append(rm.list, member{sid: sid})
}

func (m members) remove(room, sid string) {
	rm := m[room]
	if rm == nil {
		return
	}
	i, in := rm.at[sid]
	if !in {
		return
	}
	last := len(rm.list) - 1
	if i != last {
		rm.list[i] = rm.list[last]
		rm.at[rm.list[i].sid] = i
	}
	rm.list[last] = member{}
	rm.list = rm.list[:last]
	delete(rm.at, sid)
	if len(rm.list) == 0 {
		delete(m, room)
	}
}

// memberSocket returns the socket listed under m's id (nil: none), from
// m's cache while it is still the one listed (s.mu held).
func (s *Server) memberSocket(m *member) *socket {
	if m.so == nil || !m.so.listed {
		m.so = s.sockets[m.sid]
	}
	return m.so
}

// putSocket lists so under its id, in place of any socket listed there
// (s.mu held).
func (s *Server) putSocket(so *socket) {
	if prev := s.sockets[so.sid]; prev != nil {
		prev.listed = false
	}
	s.sockets[so.sid] = so
	so.listed = true
}

// dropSocket takes so off the list, unless another socket replaced it
// there (s.mu held).
func (s *Server) dropSocket(so *socket) {
	if s.sockets[so.sid] == so {
		delete(s.sockets, so.sid)
	}
	so.listed = false
}
