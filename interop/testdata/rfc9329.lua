-- A tshark dissector for IKE and ESP over TCP (RFC 9329 / RFC 8229) on
-- TCP port 4500, for the interop tests: Debian 12's tshark 4.0 has only
-- the Cisco proprietary "tcpencap" format on that port. It follows the
-- framing (the "IKETCP" prefix, a 16-bit length counting itself, the
-- non-ESP marker in front of IKE) and hands each message to tshark's own
-- ISAKMP and ESP dissectors, so that display filters such as
-- "isakmp.exchtype == 35" or "esp.spi == 0x..." work on the stream.
--
--   tshark -X lua_script:interop/testdata/rfc9329.lua -r capture.pcap

local proto = Proto("rfc9329", "IKE and ESP over TCP (RFC 9329)")
local f_length = ProtoField.uint16("rfc9329.length", "Length")
local f_kind = ProtoField.string("rfc9329.kind", "Kind")
proto.fields = { f_length, f_kind }

local isakmp = Dissector.get("isakmp")
local esp = Dissector.get("esp")

-- Each TCP segment is taken on its own: the tests' captures hold whole
-- messages per segment (pings and IKE, far below the MSS), and tshark 4.0
-- crashes in dissect_tcp_pdus called from Lua. A message cut by a segment
-- boundary is left undissected.
function proto.dissector(tvb, pinfo, tree)
    local offset = 0
    local total = tvb:len()
    if total >= 6 and tvb(0, 6):string() == "IKETCP" then
        tree:add(proto, tvb(0, 6)):add(f_kind, "stream prefix")
        pinfo.cols.protocol = "RFC9329"
        offset = 6
    end
    while total - offset >= 2 do
        local n = tvb(offset, 2):uint()
        if n < 2 or offset + n > total then
            break
        end
        local t = tree:add(proto, tvb(offset, n))
        t:add(f_length, tvb(offset, 2))
        if n == 3 and tvb(offset + 2, 1):uint() == 0xff then
            t:add(f_kind, "keepalive")
            pinfo.cols.protocol = "RFC9329"
        elseif n >= 6 and tvb(offset + 2, 4):uint() == 0 then
            t:add(f_kind, "IKE")
            if n > 6 then
                isakmp:call(tvb(offset + 6, n - 6):tvb(), pinfo, tree)
            end
        elseif n > 2 then
            t:add(f_kind, "ESP")
            esp:call(tvb(offset + 2, n - 2):tvb(), pinfo, tree)
        end
        offset = offset + n
    end
    return total
end

DissectorTable.get("tcp.port"):add(4500, proto)
