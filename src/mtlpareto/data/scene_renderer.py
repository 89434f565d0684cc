"""Ray casting of procedurally generated 3-D scenes (numpy): exact labels, depth and normals.

Geometry.  A pinhole camera at the origin looks along +z of its own frame (x right, y down,
z forward, OpenCV's convention); the ray through pixel (u, v) (0-based, pixel centres) is
d = ((u - cx) / fx, (v - cy) / fy, 1), rotated into the world by the camera's rotation R.
Because d has z = 1 in the camera frame, the ray parameter t of a hit IS its camera-frame
depth z (what NYUv2's depth maps hold: z, not the distance along the ray).  The world frame
is the camera frame before R: y points down, so the floor / road is the plane y = +camera
height.

Primitives: planes n.X = c (room walls, floor, ceiling, road), axis-aligned boxes (furniture,
cars, buildings, paintings as thin boxes), spheres (objects, tree crowns).  Every pixel takes
the nearest hit with t > 0; its class, instance and surface normal are those of that
primitive, so labels are exact.  Normals are returned in the camera frame, unit length and
facing the camera (n.d < 0); a pixel without a hit (the sky) has depth 0 and normal 0, the
community's "invalid" values.

Images: albedo (a per-primitive colour modulated by one of a few seeded value-noise textures
sampled at the hit's surface coordinates) times Lambert shading from one directional light
plus ambient, plus sensor noise; uint8 RGB.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# NYUv2's RGB camera (Silberman et al. 2012 toolbox, camera_params.m) at 640x480.
NYU_INTRINSICS = {"fx": 518.857901, "fy": 519.469611, "cx": 325.582449, "cy": 253.736166, "width": 640, "height": 480}
# Cityscapes' left camera (camera/*.json of the official files) at 2048x1024; stereo baseline in metres.
CITYSCAPES_INTRINSICS = {"fx": 2262.52, "fy": 2265.30, "cx": 1096.98, "cy": 513.137, "width": 2048, "height": 1024}
CITYSCAPES_BASELINE_M = 0.209313

NO_INSTANCE = -1


@dataclass
class Camera:
    fx: float
    fy: float
    cx: float
    cy: float
    height: int
    width: int
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))  # camera -> world

    @staticmethod
    def scaled(intrinsics: dict, height: int, width: int, rotation: np.ndarray | None = None) -> "Camera":
        """The camera of `intrinsics` resampled to height x width (focal lengths and centre scale with it)."""
        sx, sy = width / intrinsics["width"], height / intrinsics["height"]
        return Camera(
            intrinsics["fx"] * sx, intrinsics["fy"] * sy, intrinsics["cx"] * sx, intrinsics["cy"] * sy, height, width,
            np.eye(3) if rotation is None else np.asarray(rotation, dtype=np.float64),
        )

    def rays(self) -> np.ndarray:
        """World-frame ray directions [H*W, 3] with camera-frame z = 1 (row-major pixels)."""
        v, u = np.mgrid[0 : self.height, 0 : self.width].astype(np.float64)
        d = np.stack([(u - self.cx) / self.fx, (v - self.cy) / self.fy, np.ones_like(u)], axis=-1).reshape(-1, 3)
        d = d @ self.rotation.T
        # No exactly-zero component: the box slab test divides by it (1/0 and 0*inf would give NaN).
        d[d == 0] = 1e-12
        return d


def rotation(pitch_deg: float = 0.0, yaw_deg: float = 0.0, roll_deg: float = 0.0) -> np.ndarray:
    """Camera -> world rotation: yaw about y, then pitch about x (positive looks down), then roll about z."""
    p, y, r = np.radians([pitch_deg, yaw_deg, roll_deg])
    rx = np.array([[1, 0, 0], [0, np.cos(p), np.sin(p)], [0, -np.sin(p), np.cos(p)]])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return ry @ rx @ rz


@dataclass
class Material:
    colour: tuple[float, float, float]
    texture: int = 0  # index into the scene set's noise textures
    texture_scale: float = 1.0  # texture periods per metre
    texture_strength: float = 0.4


@dataclass
class Primitive:
    label: int
    material: Material
    instance: int = NO_INSTANCE
    valid_depth: bool = True  # False: the sensor returns nothing here (NYUv2's Kinect on glass)

    def intersect(self, rays: np.ndarray, inverse: np.ndarray) -> np.ndarray:
        """Ray parameter t [P] of the nearest hit with t > 0 (inf: no hit).

        `rays` is [P, 3]; `inverse` is 1 / rays as [3, P] (per-axis rows: elementwise slab tests
        on contiguous rows are ~5x faster than reductions over the short axis).
        """
        raise NotImplementedError

    def normal(self, points: np.ndarray) -> np.ndarray:
        """World-frame normals [P, 3] at hit points (either orientation; flipped to face the camera later)."""
        raise NotImplementedError


_EPS = 1e-9


@dataclass
class Plane(Primitive):
    """The infinite plane n.X = offset."""

    n: tuple[float, float, float] = (0.0, 0.0, 1.0)
    offset: float = 1.0

    def intersect(self, rays: np.ndarray, inverse: np.ndarray) -> np.ndarray:
        n = np.asarray(self.n, dtype=np.float64)
        denom = rays @ n
        with np.errstate(divide="ignore", invalid="ignore"):
            t = self.offset / denom
        return np.where((np.abs(denom) > _EPS) & (t > 0), t, np.inf)

    def normal(self, points: np.ndarray) -> np.ndarray:
        n = np.asarray(self.n, dtype=np.float64)
        return np.broadcast_to(n / np.linalg.norm(n), points.shape)


@dataclass
class Box(Primitive):
    """The axis-aligned box lo <= X <= hi (world frame); seen from outside or from inside."""

    lo: tuple[float, float, float] = (0.0, 0.0, 0.0)
    hi: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def intersect(self, rays: np.ndarray, inverse: np.ndarray) -> np.ndarray:
        near, far = [], []
        for axis in range(3):
            t1, t2 = self.lo[axis] * inverse[axis], self.hi[axis] * inverse[axis]
            near.append(np.minimum(t1, t2))
            far.append(np.maximum(t1, t2))
        t_near = np.maximum(np.maximum(near[0], near[1]), near[2])
        t_far = np.minimum(np.minimum(far[0], far[1]), far[2])
        hit = t_far >= np.maximum(t_near, 0.0)
        # Camera outside: the entry point; camera inside (a room): the exit point.
        t = np.where(t_near > 0, t_near, t_far)
        return np.where(hit & (t > 0), t, np.inf)

    def normal(self, points: np.ndarray) -> np.ndarray:
        lo, hi = np.asarray(self.lo), np.asarray(self.hi)
        # The face whose coordinate the point lies on (the smallest distance to a face plane).
        distance = np.concatenate([np.abs(points - lo), np.abs(points - hi)], axis=1)
        face = distance.argmin(axis=1)
        normals = np.zeros_like(points)
        normals[np.arange(len(points)), face % 3] = 1.0
        return normals


@dataclass
class Sphere(Primitive):
    centre: tuple[float, float, float] = (0.0, 0.0, 5.0)
    radius: float = 1.0

    def intersect(self, rays: np.ndarray, inverse: np.ndarray) -> np.ndarray:
        c = np.asarray(self.centre)
        a = np.einsum("ij,ij->i", rays, rays)
        b = rays @ c
        disc = b * b - a * (c @ c - self.radius**2)
        root = np.sqrt(np.maximum(disc, 0.0))
        t0, t1 = (b - root) / a, (b + root) / a
        t = np.where(t0 > 0, t0, t1)
        return np.where((disc >= 0) & (t > 0), t, np.inf)

    def normal(self, points: np.ndarray) -> np.ndarray:
        return (points - np.asarray(self.centre)) / self.radius


@dataclass
class Scene:
    primitives: list[Primitive]
    camera: Camera
    sky_label: int | None = None  # class of pixels without a hit (None: every ray must hit)
    light: tuple[float, float, float] = (0.3, 1.0, 0.4)  # direction the light travels (world frame)
    sky_colour: tuple[float, float, float] = (0.55, 0.7, 0.9)


@dataclass
class Rendering:
    """One rendered view: HxW maps in the community's conventions (see the module docstring)."""

    image: np.ndarray  # uint8 [H, W, 3]
    label: np.ndarray  # int16 [H, W]; sky_label where nothing is hit
    depth: np.ndarray  # float64 [H, W], camera-frame z in metres; 0 = invalid
    normal: np.ndarray  # float64 [H, W, 3], camera frame, unit; 0 = invalid
    instance: np.ndarray  # int32 [H, W]; NO_INSTANCE outside instances


def value_noise_textures(rng: np.random.Generator, count: int = 6, size: int = 64) -> np.ndarray:
    """`count` tileable noise textures [count, size, size] in [-1, 1]: random lattices summed over octaves."""
    textures = np.zeros((count, size, size))
    for octave in (4, 8, 16, 32):
        lattice = rng.uniform(-1, 1, size=(count, octave, octave))
        # Bilinear upsampling of a periodic lattice: smooth, tileable noise at that scale.
        coords = np.arange(size) * octave / size
        i0 = np.floor(coords).astype(int)
        f = coords - i0
        i1 = (i0 + 1) % octave
        rows = lattice[:, i0, :] * (1 - f)[None, :, None] + lattice[:, i1, :] * f[None, :, None]
        layer = rows[:, :, i0] * (1 - f)[None, None, :] + rows[:, :, i1] * f[None, None, :]
        textures += layer * (4.0 / octave) ** 0.7
    return textures / np.abs(textures).max(axis=(1, 2), keepdims=True)


def render(scene: Scene, textures: np.ndarray | None = None, rng: np.random.Generator | None = None, noise: float = 0.0) -> Rendering:
    """Cast one ray per pixel; the nearest hit gives every map (see the module docstring)."""
    cam = scene.camera
    rays = cam.rays()
    inverse = np.ascontiguousarray((1.0 / rays).T)
    n_pixels = rays.shape[0]
    best_t = np.full(n_pixels, np.inf)
    best = np.full(n_pixels, -1, dtype=np.int64)
    for k, primitive in enumerate(scene.primitives):
        t = primitive.intersect(rays, inverse)
        nearer = t < best_t
        best_t[nearer] = t[nearer]
        best[nearer] = k
    hit = best >= 0
    if scene.sky_label is None and not hit.all():
        raise ValueError(f"{int((~hit).sum())} rays hit nothing and the scene has no sky class")
    label = np.full(n_pixels, -1 if scene.sky_label is None else scene.sky_label, dtype=np.int16)
    instance = np.full(n_pixels, NO_INSTANCE, dtype=np.int32)
    depth = np.zeros(n_pixels)
    normal_world = np.zeros((n_pixels, 3))
    albedo = np.tile(np.asarray(scene.sky_colour), (n_pixels, 1))
    sky_rows = np.repeat(np.arange(cam.height), cam.width) / max(cam.height - 1, 1)
    albedo[~hit] *= (1.1 - 0.4 * sky_rows[~hit])[:, None]  # brighter towards the horizon
    valid_depth = hit.copy()
    for k, primitive in enumerate(scene.primitives):
        mine = np.flatnonzero(best == k)
        if not mine.size:
            continue
        points = rays[mine] * best_t[mine, None]
        n = primitive.normal(points)
        n = n / np.linalg.norm(n, axis=1, keepdims=True)
        n = np.where((np.einsum("ij,ij->i", n, rays[mine]) > 0)[:, None], -n, n)  # face the camera
        normal_world[mine] = n
        label[mine] = primitive.label
        instance[mine] = primitive.instance
        depth[mine] = best_t[mine]
        valid_depth[mine] = primitive.valid_depth
        albedo[mine] = _albedo(primitive.material, points, n, textures)
    light = -np.asarray(scene.light, dtype=np.float64)
    light /= np.linalg.norm(light)
    shading = np.where(hit, 0.35 + 0.65 * np.clip(normal_world @ light, 0.0, None), 1.0)
    colour = albedo * shading[:, None]
    if noise > 0:
        if rng is None:
            raise ValueError("render: noise > 0 needs a random generator")
        colour = colour + rng.normal(0.0, noise, size=colour.shape)
    image = np.clip(np.round(colour * 255.0), 0, 255).astype(np.uint8)
    normal_cam = normal_world @ cam.rotation  # rows: R^T n (world -> camera)
    depth = np.where(valid_depth, depth, 0.0)
    normal_cam[~valid_depth] = 0.0
    h, w = cam.height, cam.width
    return Rendering(image.reshape(h, w, 3), label.reshape(h, w), depth.reshape(h, w), normal_cam.reshape(h, w, 3), instance.reshape(h, w))


def _albedo(material: Material, points: np.ndarray, normals: np.ndarray, textures: np.ndarray | None) -> np.ndarray:
    colour = np.broadcast_to(np.asarray(material.colour, dtype=np.float64), points.shape)
    if textures is None or material.texture_strength == 0:
        return colour
    # Surface coordinates: the two world axes least aligned with the normal (exact for boxes and walls).
    axis = np.abs(normals).argmax(axis=1)
    first = np.where(axis == 0, points[:, 2], points[:, 0])
    second = np.where(axis == 1, points[:, 2], points[:, 1])
    size = textures.shape[-1]
    i = np.floor(first * material.texture_scale * size).astype(np.int64) % size
    j = np.floor(second * material.texture_scale * size).astype(np.int64) % size
    value = textures[material.texture % len(textures)][j, i]
    return np.clip(colour * (1.0 + material.texture_strength * value[:, None]), 0.0, 1.0)


# --------------------------------------------------------------------------- scene generators

# NYUv2's 13 classes (Couprie et al. 2013; the MTAN preprocessed labels 0..12, -1 unlabelled).
NYU13_CLASSES: tuple[str, ...] = ("bed", "books", "ceiling", "chair", "floor", "furniture", "objects", "picture", "sofa", "table", "tv", "wall", "window")
# Cityscapes' 7 categories (label_7 of the community layout: the official category ids 1..7 minus 1; void = -1).
CITYSCAPES7_CLASSES: tuple[str, ...] = ("flat", "construction", "object", "nature", "sky", "human", "vehicle")

_NYU = {name: i for i, name in enumerate(NYU13_CLASSES)}
_CS = {name: i for i, name in enumerate(CITYSCAPES7_CLASSES)}


def _material(rng: np.random.Generator, base: tuple[float, float, float], spread: float = 0.12, scale: tuple[float, float] = (0.5, 3.0)) -> Material:
    colour = np.clip(np.asarray(base) + rng.uniform(-spread, spread, size=3), 0.05, 0.95)
    return Material(tuple(colour), texture=int(rng.integers(0, 1 << 16)), texture_scale=float(rng.uniform(*scale)), texture_strength=float(rng.uniform(0.15, 0.5)))


def _box(label: int, material: Material, x: tuple[float, float], y: tuple[float, float], z: tuple[float, float], **kw) -> Box:
    return Box(label, material, lo=(x[0], y[0], z[0]), hi=(x[1], y[1], z[1]), **kw)


def indoor_scene(rng: np.random.Generator, height: int, width: int) -> Scene:
    """A room (floor, ceiling, walls with pictures and a window) with furniture, NYUv2's classes.

    World y points down; the camera (NYUv2's intrinsics scaled to height x width) stands at
    1.0-1.6 m, pitched 0-15 degrees down and turned up to +-20 degrees.
    """
    cam_h = rng.uniform(1.0, 1.6)
    room_h = rng.uniform(2.4, 3.0)
    left, right = -rng.uniform(1.5, 3.0), rng.uniform(1.5, 3.0)
    back = rng.uniform(3.5, 7.0)
    floor_y, ceiling_y = cam_h, cam_h - room_h
    camera = Camera.scaled(NYU_INTRINSICS, height, width, rotation(rng.uniform(0, 15), rng.uniform(-20, 20), rng.uniform(-2, 2)))
    wall = _material(rng, (0.75, 0.72, 0.65), 0.15, (0.3, 1.0))
    prims: list[Primitive] = [
        Plane(_NYU["floor"], _material(rng, (0.5, 0.38, 0.25), 0.15), n=(0, 1, 0), offset=floor_y),
        Plane(_NYU["ceiling"], _material(rng, (0.9, 0.9, 0.88), 0.05, (0.2, 0.5)), n=(0, 1, 0), offset=ceiling_y),
        Plane(_NYU["wall"], wall, n=(1, 0, 0), offset=left),
        Plane(_NYU["wall"], wall, n=(1, 0, 0), offset=right),
        Plane(_NYU["wall"], wall, n=(0, 0, 1), offset=back),
        Plane(_NYU["wall"], wall, n=(0, 0, 1), offset=-0.5),
    ]
    # Pictures and windows: thin boxes on the back and side walls (windows return no depth, as glass for a Kinect).
    for _ in range(int(rng.integers(1, 4))):
        kind = "window" if rng.random() < 0.35 else "picture"
        w_, h_ = (rng.uniform(0.8, 1.6), rng.uniform(0.9, 1.4)) if kind == "window" else (rng.uniform(0.3, 1.0), rng.uniform(0.3, 0.8))
        top = ceiling_y + rng.uniform(0.3, 0.8)
        mat = _material(rng, (0.75, 0.85, 0.95) if kind == "window" else tuple(rng.uniform(0.1, 0.9, 3)), 0.1)
        side = rng.integers(0, 3)
        if side == 0:  # back wall
            x0 = rng.uniform(left + 0.1, max(left + 0.1, right - w_ - 0.1))
            prims.append(_box(_NYU[kind], mat, (x0, x0 + w_), (top, top + h_), (back - 0.03, back), valid_depth=kind != "window"))
        else:
            x = left if side == 1 else right
            z0 = rng.uniform(1.0, max(1.0, back - w_ - 0.1))
            prims.append(_box(_NYU[kind], mat, (x, x + 0.03) if side == 1 else (x - 0.03, x), (top, top + h_), (z0, z0 + w_), valid_depth=kind != "window"))
    # Furniture standing on the floor: (class, width, height, depth ranges in metres).
    catalogue = {
        "bed": ((1.4, 2.0), (0.4, 0.6), (1.9, 2.1)),
        "sofa": ((1.5, 2.2), (0.7, 0.9), (0.8, 1.0)),
        "chair": ((0.4, 0.55), (0.8, 1.0), (0.4, 0.55)),
        "furniture": ((0.6, 1.4), (0.8, 2.0), (0.4, 0.6)),
        "table": ((0.8, 1.6), (0.7, 0.78), (0.6, 1.0)),
    }
    tops: list[tuple[float, float, float, float, float]] = []  # (x0, x1, z0, z1, y_top) of support surfaces
    for _ in range(int(rng.integers(2, 6))):
        name = str(rng.choice(list(catalogue)))
        (w0, w1), (h0, h1), (d0, d1) = catalogue[name]
        w_, h_, d_ = rng.uniform(w0, w1), rng.uniform(h0, h1), rng.uniform(d0, d1)
        x0 = rng.uniform(left + 0.05, max(left + 0.05, right - w_ - 0.05))
        z0 = back - d_ - 0.02 if name == "furniture" else rng.uniform(1.2, max(1.2, back - d_ - 0.1))
        mat = _material(rng, {"bed": (0.7, 0.6, 0.65), "sofa": (0.35, 0.3, 0.45), "chair": (0.45, 0.3, 0.2), "furniture": (0.55, 0.4, 0.28), "table": (0.6, 0.45, 0.3)}[name], 0.2)
        top = floor_y - h_
        if name == "table":  # a top slab on four legs
            prims.append(_box(_NYU["table"], mat, (x0, x0 + w_), (top, top + 0.04), (z0, z0 + d_)))
            for lx in (x0, x0 + w_ - 0.05):
                for lz in (z0, z0 + d_ - 0.05):
                    prims.append(_box(_NYU["table"], mat, (lx, lx + 0.05), (top + 0.04, floor_y), (lz, lz + 0.05)))
        elif name == "chair":  # a seat and a back rest
            seat = floor_y - 0.45
            prims.append(_box(_NYU["chair"], mat, (x0, x0 + w_), (seat, floor_y), (z0, z0 + d_)))
            prims.append(_box(_NYU["chair"], mat, (x0, x0 + w_), (top, seat), (z0 + d_ - 0.06, z0 + d_)))
        else:
            prims.append(_box(_NYU[name], mat, (x0, x0 + w_), (top, floor_y), (z0, z0 + d_)))
        if name in ("table", "furniture"):
            tops.append((x0, x0 + w_, z0, z0 + d_, top))
    # Small things on tables and furniture: books, a TV, objects (spheres).
    for x0, x1, z0, z1, y_top in tops:
        for _ in range(int(rng.integers(0, 3))):
            thing = str(rng.choice(["books", "objects", "tv"]))
            cx, cz = rng.uniform(x0 + 0.1, max(x0 + 0.1, x1 - 0.1)), rng.uniform(z0 + 0.1, max(z0 + 0.1, z1 - 0.1))
            if thing == "objects":
                r = rng.uniform(0.05, 0.15)
                prims.append(Sphere(_NYU["objects"], _material(rng, tuple(rng.uniform(0.1, 0.9, 3)), 0.1), centre=(cx, y_top - r, cz), radius=r))
            elif thing == "books":
                w_, h_, d_ = rng.uniform(0.15, 0.35), rng.uniform(0.05, 0.25), rng.uniform(0.15, 0.25)
                prims.append(_box(_NYU["books"], _material(rng, tuple(rng.uniform(0.1, 0.9, 3)), 0.1, (4, 10)), (cx - w_ / 2, cx + w_ / 2), (y_top - h_, y_top), (cz - d_ / 2, cz + d_ / 2)))
            else:
                w_, h_ = rng.uniform(0.5, 1.0), rng.uniform(0.3, 0.6)
                prims.append(_box(_NYU["tv"], _material(rng, (0.08, 0.08, 0.1), 0.05), (cx - w_ / 2, cx + w_ / 2), (y_top - h_, y_top), (cz - 0.04, cz + 0.04)))
    return Scene(prims, camera, sky_label=None, light=(rng.uniform(-0.5, 0.5), 1.0, rng.uniform(0.2, 0.8)))


def street_scene(rng: np.random.Generator, height: int, width: int) -> Scene:
    """A street (road and pavements, buildings, poles, trees, cars, people), Cityscapes' 7 classes.

    The camera (Cityscapes' intrinsics scaled to height x width) is 1.2-1.4 m above the road,
    nearly level; cars and people carry instance ids; pixels with no hit are sky.
    """
    cam_h = rng.uniform(1.2, 1.4)
    camera = Camera.scaled(CITYSCAPES_INTRINSICS, height, width, rotation(rng.uniform(-2, 3), rng.uniform(-8, 8), rng.uniform(-1.5, 1.5)))
    ground = cam_h
    road_half = rng.uniform(3.0, 7.0)
    x_shift = rng.uniform(-1.5, 1.5)
    road_l, road_r = x_shift - road_half, x_shift + road_half
    walk = rng.uniform(1.5, 4.0)
    prims: list[Primitive] = [Plane(_CS["flat"], _material(rng, (0.35, 0.35, 0.37), 0.05, (0.5, 2.0)), n=(0, 1, 0), offset=ground)]
    kerb = _material(rng, (0.6, 0.58, 0.55), 0.08, (1.0, 3.0))
    for x0, x1 in ((road_l - walk, road_l), (road_r, road_r + walk)):
        prims.append(_box(_CS["flat"], kerb, (x0, x1), (ground - 0.15, ground), (0.5, 200.0)))
    # Buildings in rows along both sides, with gaps.
    for side in (-1, 1):
        z = rng.uniform(2.0, 8.0)
        while z < 120:
            length = rng.uniform(8, 25)
            if rng.random() < 0.85:
                h_ = rng.uniform(6, 25)
                edge = road_l - walk if side < 0 else road_r + walk
                depth_ = rng.uniform(8, 15)
                xs = (edge - depth_, edge) if side < 0 else (edge, edge + depth_)
                prims.append(_box(_CS["construction"], _material(rng, tuple(rng.uniform(0.3, 0.8, 3)), 0.05, (0.2, 1.0)), xs, (ground - h_, ground), (z, z + length)))
            z += length + rng.uniform(0, 4)
    # Poles and signs (object), trees (nature) on the pavements.
    for _ in range(int(rng.integers(2, 7))):
        side = rng.choice([-1, 1])
        x = (road_l - rng.uniform(0.3, 1.0)) if side < 0 else (road_r + rng.uniform(0.3, 1.0))
        z = rng.uniform(4, 60)
        if rng.random() < 0.5:
            h_ = rng.uniform(3, 7)
            prims.append(_box(_CS["object"], _material(rng, (0.4, 0.4, 0.42), 0.05), (x - 0.08, x + 0.08), (ground - h_, ground), (z - 0.08, z + 0.08)))
            if rng.random() < 0.6:
                prims.append(_box(_CS["object"], _material(rng, (0.8, 0.7, 0.1), 0.15), (x - 0.4, x + 0.4), (ground - h_, ground - h_ + 0.6), (z - 0.03, z + 0.03)))
        else:
            r = rng.uniform(1.0, 2.5)
            trunk = rng.uniform(1.5, 3.0)
            green = _material(rng, (0.25, 0.45, 0.2), 0.08, (2.0, 6.0))
            prims.append(_box(_CS["nature"], _material(rng, (0.35, 0.25, 0.15), 0.05), (x - 0.15, x + 0.15), (ground - trunk, ground), (z - 0.15, z + 0.15)))
            prims.append(Sphere(_CS["nature"], green, centre=(x, ground - trunk - r * 0.8, z), radius=r))
    instance = 0
    # Cars on the road (vehicle), people on the pavements (human): one instance id each.
    for _ in range(int(rng.integers(1, 6))):
        lane_x = rng.uniform(road_l + 1.0, road_r - 2.8)
        z = rng.uniform(4, 40)
        length, w_, h_ = rng.uniform(3.8, 4.8), rng.uniform(1.7, 1.9), rng.uniform(1.4, 1.6)
        body = _material(rng, tuple(rng.uniform(0.05, 0.9, 3)), 0.05, (0.5, 1.0))
        prims.append(_box(_CS["vehicle"], body, (lane_x, lane_x + w_), (ground - h_, ground - 0.2), (z, z + length), instance=instance))
        instance += 1
    for _ in range(int(rng.integers(0, 6))):
        side = rng.choice([-1, 1])
        x = rng.uniform(road_l - walk + 0.3, road_l - 0.3) if side < 0 else rng.uniform(road_r + 0.3, road_r + walk - 0.3)
        z = rng.uniform(3, 30)
        h_ = rng.uniform(1.55, 1.9)
        prims.append(_box(_CS["human"], _material(rng, tuple(rng.uniform(0.1, 0.7, 3)), 0.1), (x - 0.25, x + 0.25), (ground - 0.15 - h_, ground - 0.15), (z - 0.15, z + 0.15), instance=instance))
        instance += 1
    return Scene(prims, camera, sky_label=_CS["sky"], light=(rng.uniform(-0.6, 0.6), 1.0, rng.uniform(0.3, 1.0)))


def disparity_from_depth(depth: np.ndarray, camera: Camera, baseline: float = CITYSCAPES_BASELINE_M) -> np.ndarray:
    """Stereo disparity in pixels of this resolution, fx * baseline / z; 0 where depth is invalid (0)."""
    with np.errstate(divide="ignore"):
        return np.where(depth > 0, camera.fx * baseline / np.where(depth > 0, depth, 1.0), 0.0)


def instance_offsets(instance: np.ndarray, ignore_value: float) -> np.ndarray:
    """[2, H, W]: (dy, dx) from each instance pixel to its instance's centroid (pixels); ignore_value elsewhere."""
    h, w = instance.shape
    offsets = np.full((2, h, w), ignore_value, dtype=np.float64)
    rows, cols = np.mgrid[0:h, 0:w]
    for k in np.unique(instance[instance != NO_INSTANCE]):
        mine = instance == k
        offsets[0][mine] = rows[mine].mean() - rows[mine]
        offsets[1][mine] = cols[mine].mean() - cols[mine]
    return offsets
