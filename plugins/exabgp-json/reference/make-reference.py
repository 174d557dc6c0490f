import sys
sys.argv=['x']
from exabgp.reactor.api.response.json import JSON
from exabgp.bgp.message.update import Update
from exabgp.bgp.message.update.attribute import Attributes, Attribute
from exabgp.bgp.message.update.attribute.origin import Origin
from exabgp.bgp.message.update.attribute.aspath import ASPath
from exabgp.bgp.message.update.attribute.med import MED
from exabgp.bgp.message.update.attribute.localpref import LocalPreference
from exabgp.bgp.message.update.attribute.community.initial.communities import Communities
from exabgp.bgp.message.update.attribute.community.initial.community import Community
from exabgp.bgp.message.update.attribute.community.large.communities import LargeCommunities
from exabgp.bgp.message.update.attribute.community.large.community import LargeCommunity
from exabgp.bgp.message.update.attribute.community.extended.communities import ExtendedCommunities
from exabgp.bgp.message.update.attribute.community.extended.rt import RouteTargetASN2Number
from exabgp.bgp.message.update.attribute.nexthop import NextHop
from exabgp.bgp.message.update.nlri.inet import INET
from exabgp.bgp.message.update.nlri.cidr import CIDR
from exabgp.bgp.message.update.eor import EOR
from exabgp.bgp.message.notification import Notify
from exabgp.bgp.message import IN, OUT
from exabgp.protocol.family import AFI, SAFI
from exabgp.protocol.ip import IP
from exabgp.bgp.message.open.asn import ASN
import exabgp.reactor.api.response.json as J

class N:
    uid='1'
    local_address=None
    peer_address='192.0.2.1'
    local_as=65000
    peer_as=65001

class _A: compact=False
class _C: attributes=False; nexthops=False
class _S: api=_A(); cache=_C()
J.environment.settings=staticmethod(lambda: _S())
j=JSON('4.0.1')
j.time=lambda _: '1796160411.142'
import os, socket
os.getpid=lambda: 0
os.getppid=lambda: 0
socket.gethostname=lambda: 'wasmbgp'
print(j.up(N()))
print(j.connected(N()))
print(j.down(N(),'peer reset [x] "y"'))
def nlri(p, nh, action):
    ip,l=p.split('/')
    afi = AFI.ipv6 if ':' in ip else AFI.ipv4
    n = INET(afi, SAFI.unicast, action)
    n.cidr = CIDR(IP.pton(ip), int(l))
    n.nexthop = IP.create(nh) if nh else None
    return n
attrs = Attributes()
attrs.add(Origin(Origin.IGP))
attrs.add(ASPath([65001,65002],[]))
attrs.add(MED(5))
attrs.add(LocalPreference(100))
attrs.add(Communities([Community.cached(bytes([0xfd,0xe9,0,1])), Community.cached(bytes([0xff,0xff,0xff,0x01]))]))
attrs.add(LargeCommunities([LargeCommunity(bytes([0,0,0xfd,0xe9,0,0,0,1,0,0,0,2]))]))
from exabgp.bgp.message.update.attribute.community.extended.community import ExtendedCommunity
attrs.add(ExtendedCommunities([ExtendedCommunity.unpack(RouteTargetASN2Number(65001,7).community), ExtendedCommunity.unpack(bytes([0x80,0x99,0,0,0,0,0,5]))]))
u = Update([nlri('10.0.0.0/24','192.0.2.1',IN.ANNOUNCED), nlri('10.0.1.0/24','192.0.2.1',IN.ANNOUNCED), nlri('2001:db8::/32','2001:db8::1',IN.ANNOUNCED), nlri('10.9.0.0/16',None,IN.WITHDRAWN), nlri('2001:db8:1::/48',None,IN.WITHDRAWN)], attrs)
print(j.update(N(), 'receive', u, None, '', ''))
u = Update([nlri('10.9.0.0/16',None,IN.WITHDRAWN)], Attributes())
print(j.update(N(), 'receive', u, None, '', ''))
a2=Attributes(); a2.add(Origin(Origin.INCOMPLETE)); a2.add(ASPath([],[]))
u = Update([nlri('10.0.0.0/24','192.0.2.1',IN.ANNOUNCED)], a2)
print(j.update(N(), 'send', u, None, '', ''))
a3=Attributes(); a3.add(Origin(Origin.EGP)); a3.add(ASPath([65001],[65010,65011]))
u = Update([nlri('10.0.0.0/24','192.0.2.1',IN.ANNOUNCED)], a3)
print(j.update(N(), 'receive', u, None, '', ''))
e = EOR(AFI.ipv4, SAFI.unicast)
print(j.update(N(), 'receive', e, None, '', ''))
e = EOR(AFI.ipv6, SAFI.unicast)
print(j.update(N(), 'receive', e, None, '', ''))
n = Notify(6,2,'bye')
print(j.notification(N(), 'send', n, None, '', ''))
n = Notify(4,0)
print(j.notification(N(), 'receive', n, None, '', ''))

from exabgp.bgp.message.update.attribute.aggregator import Aggregator
from exabgp.bgp.message.update.attribute.atomicaggregate import AtomicAggregate
a4=Attributes(); a4.add(Origin(Origin.IGP)); a4.add(ASPath([65001],[],[65100],[65200])); a4.add(AtomicAggregate()); a4.add(Aggregator(ASN(65001), IP.create('192.0.2.9')))
u = Update([nlri('10.0.0.0/24','192.0.2.1',IN.ANNOUNCED), nlri('10.0.2.0/24','192.0.2.2',IN.ANNOUNCED)], a4)
print(j.update(N(), 'receive', u, None, '', ''))
